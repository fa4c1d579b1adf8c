"""Transports: one interface, a PC/SC reader (real card, or the simulator over vpcd) and the
in-process simulator. Each backend only moves raw bytes; 61xx/6Cxx handling, status-word checks,
tracing, the length check and exclusive flows live once, here in the base class.

Flows. A multi-APDU operation (a secure channel from INITIALIZE UPDATE to its last command, a VERIFY and
the command it guards, a deploy, a GlobalPlatform session) runs inside ``with transport.exclusive():``,
which holds a PC/SC transaction: no other program's APDU gets between its commands. A flow that sent a
command leaving security state on the card (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER,
INITIALIZE UPDATE, EXTERNAL AUTHENTICATE or any secure messaging) ends with the card reset, so no other
program can ride on its verified PIN or open channel; so does a disconnect after such a command outside
any flow. Other flows leave the card as they found it."""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from cardsuite.apdu import SW_OK, CommandAPDU, ResponseAPDU, select_by_name
from cardsuite.cla import channel_cla, cla_channel
from cardsuite.errors import ConfigurationError, TransportError
from cardsuite.settings import ENV_APDU_TIMEOUT
from cardsuite.trace import Trace

GET_RESPONSE_INS = 0xC0


SELECT_INS = 0xA4


_SW_OK_BYTES = SW_OK.to_bytes(2, "big")


_MAX_GET_RESPONSE = 64  # a card answering 61xx forever is broken; stop rather than loop


_response = ResponseAPDU.from_bytes  # bound once: every round trip calls it

MIN_COMMAND = 4  # CLA INS P1 P2 (ISO 7816-3 12.1.2); vpcd reads a 1-byte message as a control code


# Commands that leave security state on the card: ISO 7816-4 VERIFY, CHANGE REFERENCE DATA, RESET RETRY
# COUNTER; GlobalPlatform INITIALIZE UPDATE, EXTERNAL AUTHENTICATE.
_SECURITY_INS = frozenset((0x20, 0x24, 0x2C, 0x50, 0x82))


def _secures(command: bytes) -> bool:
    """Whether a command may leave security state: one of _SECURITY_INS, or secure messaging
    (ISO 7816-4 5.4.1: CLA b3-b4 for the first interindustry classes and their proprietary mirrors,
    b6 for the further interindustry classes, channels 4-19; GlobalPlatform's mirror of those, C0-FE, has it
    in b6 too, GPCS 11.1.4: E0-EF). Where in doubt, yes: a proprietary class may also use b4 b3."""
    cla = command[0]
    if 0x40 <= cla < 0x80:
        bits = 0x20
    elif cla >= 0xC0:
        bits = 0x2C
    else:
        bits = 0x0C
    return command[1] in _SECURITY_INS or bool(cla & bits)


# _secures as two tables by CLA and by INS, looked up on every APDU (an in-process round trip is a few µs)
_SECURING_CLA = bytes(_secures(bytes((cla, 0))) for cla in range(256))
_SECURING_INS = bytes(ins in _SECURITY_INS for ins in range(256))


def _check(transport: Transport, command: bytes) -> None:
    """Before a command is sent: shorter than a header is refused, and a command that may leave security
    state is noted for the end of the flow."""
    if len(command) < MIN_COMMAND:
        raise TransportError(f"a command APDU has at least {MIN_COMMAND} bytes (CLA INS P1 P2), "
                             f"got {len(command)}: not sent")
    if not transport._secured and (_SECURING_CLA[command[0]] or _SECURING_INS[command[1]]):
        transport._secured = True


def _get_response(command: CommandAPDU, le: int) -> CommandAPDU:
    """GET RESPONSE (an interindustry command, ISO 7816-4) for the rest of ``command``'s answer, on the logical
    channel ``command`` went to, where the card keeps it: 0X for channels 0-3, 4X for 4-19 (5.4.1)."""
    try:
        channel = cla_channel(command.cla)
    except ValueError:
        raise TransportError(f"the card answered 61xx to a command with CLA {command.cla:02X}, which addresses "
                             "no logical channel to send GET RESPONSE on") from None
    return CommandAPDU(channel_cla(channel), GET_RESPONSE_INS, 0, 0, le=le)


def _checked(transmit_raw: Callable[[Transport, bytes], bytes]) -> Callable[[Transport, bytes], bytes]:
    """Wraps a backend's transmit_raw with the base's checks (_check)."""

    def transmit_raw_checked(self: Transport, command: bytes) -> bytes:
        _check(self, command)
        return transmit_raw(self, command)

    transmit_raw_checked.__doc__ = transmit_raw.__doc__
    transmit_raw_checked.checked = True  # type: ignore[attr-defined]
    return transmit_raw_checked


def _checked_many(transmit_raw_many: Callable[[Transport, Sequence[bytes]], list[bytes]]
                  ) -> Callable[[Transport, Sequence[bytes]], list[bytes]]:
    """Wraps a backend's transmit_raw_many with the base's checks of every command, all before any is sent."""

    def transmit_raw_many_checked(self: Transport, commands: Sequence[bytes]) -> list[bytes]:
        for command in commands:
            _check(self, command)
        return transmit_raw_many(self, commands)

    transmit_raw_many_checked.__doc__ = transmit_raw_many.__doc__
    transmit_raw_many_checked.checked = True  # type: ignore[attr-defined]
    return transmit_raw_many_checked


def _noted_reset(reset: Callable[[Transport], bytes]) -> Callable[[Transport], bytes]:
    """Wraps a backend's reset: the trace hears of it (a transcript replays resets)."""

    def reset_noted(self: Transport) -> bytes:
        atr = reset(self)
        if self.trace is not None:
            self.trace.reset_seen()
        return atr

    reset_noted.__doc__ = reset.__doc__
    reset_noted.noted = True  # type: ignore[attr-defined]
    return reset_noted


class Transport(ABC):
    """A link to one card."""

    name: str = "card"
    # LOAD blocks handed to transmit_many at once (GlobalPlatform.load: progress is told after each window);
    # a backend whose round trip is long takes more of them per run
    load_window: int = 16
    # whether a run of commands costs about what one command does (a relay: one round trip each way): then
    # a deploy sends its consecutive loads, installs and SET STATUS in one run (Deployer), else step by step, with
    # progress after each window
    runs_cost_one_round_trip: bool = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        """Every backend's transmit_raw (and transmit_raw_many) gets the base's checks, whoever calls it."""
        super().__init_subclass__(**kwargs)
        raw = cls.__dict__.get("transmit_raw")
        if raw is not None and not getattr(raw, "checked", False):
            cls.transmit_raw = _checked(raw)  # type: ignore[method-assign]
        many = cls.__dict__.get("transmit_raw_many")
        if many is not None and not getattr(many, "checked", False):
            cls.transmit_raw_many = _checked_many(many)  # type: ignore[method-assign]
        reset = cls.__dict__.get("reset")
        if reset is not None and not getattr(reset, "noted", False):
            cls.reset = _noted_reset(reset)  # type: ignore[method-assign]

    def __init__(self) -> None:
        self.trace: Trace | None = None
        self._flow_lock = threading.RLock()  # in-process: one flow at a time per transport
        self._flow_depth = 0
        self._secured = False  # a command since the last reset may have left security state

    # -- exclusive flows
    @contextmanager
    def exclusive(self) -> Iterator[Transport]:
        """Holds the card for a multi-APDU flow (re-entrant: an inner flow joins the outer one). The
        outermost flow ends with the card reset when it left security state (see the module's doc)."""
        with self._flow_lock:
            if self._flow_depth == 0:
                self._begin_exclusive()
            self._flow_depth += 1
            try:
                yield self
            finally:
                self._flow_depth -= 1
                if self._flow_depth == 0:
                    reset, self._secured = self._secured, False
                    self._end_exclusive(reset)

    @property
    def in_flow(self) -> bool:
        return self._flow_depth > 0

    def _begin_exclusive(self) -> None:  # noqa: B027 - a hook most backends need not fill
        """Backend hook: take the card from other programs (no other program shares an in-process card)."""

    def _end_exclusive(self, reset: bool) -> None:
        """Backend hook: give the card back, reset when ``reset``."""
        if reset:
            self.reset()

    # -- what a backend implements
    @abstractmethod
    def connect(self) -> None: ...

    @abstractmethod
    def disconnect(self) -> None: ...

    @abstractmethod
    def reset(self) -> bytes:
        """Resets the card (cold reset where the backend can) and returns the ATR."""

    @property
    @abstractmethod
    def atr(self) -> bytes: ...

    @abstractmethod
    def transmit_raw(self, command: bytes) -> bytes:
        """Sends one command APDU as is and returns the response with its status word."""

    def transmit_raw_many(self, commands: Sequence[bytes]) -> list[bytes]:
        """Sends the commands as they are, in order, stopping after the first response whose status word is
        not 9000; returns the responses (one per command sent). Here one by one; a backend whose round trip
        is long (the SCMS relay) sends them all without waiting for each answer, under the same rule."""
        responses = []
        for command in commands:
            responses.append(self.transmit_raw(command))
            if responses[-1][-2:] != _SW_OK_BYTES:
                break
        return responses

    # -- shared behaviour
    def __enter__(self) -> Transport:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def exchange(self, command: CommandAPDU) -> ResponseAPDU:
        """One command, with no status word handling at all."""
        trace = self.trace
        if trace is None:  # the clock only for a trace: an in-process round trip is a few µs
            return _response(self.transmit_raw(command.to_bytes()))
        started = time.perf_counter()
        response = ResponseAPDU.from_bytes(self.transmit_raw(command.to_bytes()))
        trace.record(command, response, started)
        return response

    def transmit(self, command: CommandAPDU) -> ResponseAPDU:
        """Sends a command the way a PC/SC application expects: 6Cxx re-sends the command with the
        right Le, 61xx collects the rest of the response with GET RESPONSE."""
        if self.trace is None:  # exchange() without its call: the in-process simulator answers in µs
            response = _response(self.transmit_raw(command.to_bytes()))
        else:
            response = self.exchange(command)
        if response.sw & 0xFF00 not in (0x6100, 0x6C00):
            return response
        if response.sw1 == 0x6C:
            response = self.exchange(command.with_le(response.sw2 or 256))
        data = response.data
        for _ in range(_MAX_GET_RESPONSE):
            if response.sw1 != 0x61:
                return ResponseAPDU(data, response.sw)
            response = self.exchange(_get_response(command, response.sw2 or 256))
            data += response.data
        raise TransportError(f"the card kept answering 61xx after {_MAX_GET_RESPONSE} GET RESPONSE commands")

    def transmit_many(self, commands: Sequence[CommandAPDU]) -> list[ResponseAPDU]:
        """transmit() of each command in order, stopping after the first answer that is not 9000; returns
        the answers (one per command sent). For a run of commands none of which depends on an earlier one's
        answer beyond its 9000 (LOAD blocks, [GPCS] 11.6): the backend may send them without waiting for
        each answer (transmit_raw_many). A 61xx or 6Cxx answer is completed as transmit() does, and the
        commands after it follow."""
        responses: list[ResponseAPDU] = []
        while len(responses) < len(commands):
            pending = commands[len(responses):]
            started = time.perf_counter()
            answers = self.transmit_raw_many([command.to_bytes() for command in pending])
            if not answers or len(answers) > len(pending):
                raise TransportError(f"{len(answers)} answers to {len(pending)} commands")
            share = (time.perf_counter() - started) / len(answers)  # each exchange's part of the run's time
            for command, answer in zip(pending, answers, strict=False):
                response = ResponseAPDU.from_bytes(answer)
                if self.trace is not None:
                    self.trace.record(command, response, time.perf_counter() - share)
                if response.sw1 == 0x6C:
                    response = self.transmit(command.with_le(response.sw2 or 256))
                elif response.sw1 == 0x61:
                    rest = self.transmit(_get_response(command, response.sw2 or 256))
                    response = ResponseAPDU(response.data + rest.data, rest.sw)
                responses.append(response)
                if response.sw != SW_OK:
                    return responses
        return responses

    def send(self, command: CommandAPDU, expected: Iterable[int] = (SW_OK,)) -> ResponseAPDU:
        """transmit() and check the status word: raises StatusError unless it is one of ``expected``."""
        return self.transmit(command).check(command, expected)

    def select(self, aid: bytes, expected: Iterable[int] = (SW_OK,)) -> ResponseAPDU:
        """SELECT by DF name (an applet AID), first occurrence, returning FCI."""
        return self.send(select_by_name(aid), expected)




DEFAULT_APDU_TIMEOUT = 30.0  # seconds; a card's slowest usual command (on-card RSA key generation) fits


# GlobalPlatform DELETE, INSTALL, LOAD (GPCS 11.2, 11.5, 11.6): INSTALL runs the applet's install(), which
# may generate keys; they get this many times the timeout
_CONTENT_MANAGEMENT = frozenset((0xE4, 0xE6, 0xE8))


_CONTENT_MANAGEMENT_FACTOR = 4


_FLOW_WAIT_FACTOR = 10  # how long a flow waits for another program to give the card back


_SCARD_PRESENT = 0x0004  # SCardStatus's state bit (pcsc-lite pcsclite.h), which pyscard does not export


_REMOVAL_WAIT = 1.0  # seconds pcscd may take to notice that a failing card went away


def apdu_timeout(value: float | str | None = None, environ: dict[str, str] | None = None) -> float:
    """The per-APDU timeout in seconds: ``value`` (a command-line option), else CARDSUITE_APDU_TIMEOUT,
    else the default."""
    env = os.environ if environ is None else environ
    text = value if value is not None else env.get(ENV_APDU_TIMEOUT)
    if text is None or text == "":
        return DEFAULT_APDU_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86400:
        raise ConfigurationError(f"APDU timeout {text!r}: a number of seconds above 0 [{ENV_APDU_TIMEOUT}]")
    return seconds


class _Watchdog:
    """Ends an SCardTransmit that outlives its deadline. pcsc-lite's client waits for pcscd without a
    limit and SCardCancel does not reach a transmit (it cancels SCardGetStatusChange only), so a card that
    stops answering would hold the caller for ever. The caller's thread itself runs the transmit (a hand-off
    to a worker costs more than a vpcd round trip's tenth); this thread only looks at the deadline a few
    times per timeout and, past it, shuts down the connection's socket to pcscd, which fails the call.
    The connection is unusable afterwards."""

    def __init__(self, sockets: list[int], timeout: float) -> None:
        self.sockets = sockets
        self.deadline = 0.0  # of the call in progress; 0 when none
        self.fired = False
        self._stop = threading.Event()
        self._period = min(max(timeout / 8, 0.02), 1.0)
        self._thread = threading.Thread(target=self._run, name="cardsuite-apdu-watchdog", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            deadline = self.deadline
            if deadline and time.monotonic() > deadline:
                self._fire()
                return

    def _fire(self) -> None:
        import socket

        self.fired = True
        for fd in self.sockets:
            try:
                sock = socket.socket(fileno=fd)
            except OSError:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            finally:
                sock.detach()  # the fd stays pcsc-lite's: shut down, not closed under its feet

    def stop(self) -> None:
        self._stop.set()


def _socket_fds() -> set[int]:
    found = set()
    for entry in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{entry}").startswith("socket:"):
                found.add(int(entry))
        except OSError:
            continue
    return found
