"""Transports: one interface, a PC/SC reader (real card, or the simulator over vpcd) and the
in-process simulator. Each backend only moves raw bytes; 61xx/6Cxx handling, status-word checks,
tracing, the length check and exclusive flows live once, here in the base class.

Flows. A multi-APDU operation (a secure channel from INITIALIZE UPDATE to its last command, a VERIFY and
the command it guards, a deploy, a GlobalPlatform session) runs inside ``with transport.exclusive():``,
which holds a PC/SC transaction: no other program's APDU gets between its commands. A flow that sent a
command leaving security state on the card (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER,
INITIALIZE UPDATE, EXTERNAL AUTHENTICATE or any secure messaging) ends with the card reset, so no other
program can ride on its verified PIN or open channel; so does a disconnect after such a command outside
any flow. Other flows leave the card as they found it.
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from .apdu import SW_OK, CommandAPDU, ResponseAPDU
from .errors import ConfigurationError, TransportError
from .trace import Trace

GET_RESPONSE_INS = 0xC0
SELECT_INS = 0xA4
_MAX_GET_RESPONSE = 64  # a card answering 61xx forever is broken; stop rather than loop
MIN_COMMAND = 4  # CLA INS P1 P2 (ISO 7816-3 12.1.2); vpcd reads a 1-byte message as a control code

# Commands that leave security state on the card: ISO 7816-4 VERIFY, CHANGE REFERENCE DATA, RESET RETRY
# COUNTER; GlobalPlatform INITIALIZE UPDATE, EXTERNAL AUTHENTICATE.
_SECURITY_INS = frozenset((0x20, 0x24, 0x2C, 0x50, 0x82))


def _secures(command: bytes) -> bool:
    """Whether a command may leave security state: one of _SECURITY_INS, or secure messaging
    (ISO 7816-4 5.4.1: CLA b3-b4 for the first interindustry classes and their proprietary mirrors,
    b6 for the further interindustry classes). Where in doubt, yes."""
    cla = command[0]
    return command[1] in _SECURITY_INS or bool(cla & (0x20 if 0x40 <= cla < 0x80 else 0x0C))


def _checked(transmit_raw: Callable[[Transport, bytes], bytes]) -> Callable[[Transport, bytes], bytes]:
    """Wraps a backend's transmit_raw: shorter than a header is refused before anything is sent, and a
    command that may leave security state is noted for the end of the flow."""

    def transmit_raw_checked(self: Transport, command: bytes) -> bytes:
        if len(command) < MIN_COMMAND:
            raise TransportError(f"a command APDU has at least {MIN_COMMAND} bytes (CLA INS P1 P2), "
                                 f"got {len(command)}: not sent")
        if not self._secured and _secures(command):
            self._secured = True
        return transmit_raw(self, command)

    transmit_raw_checked.__doc__ = transmit_raw.__doc__
    transmit_raw_checked.checked = True  # type: ignore[attr-defined]
    return transmit_raw_checked


class Transport(ABC):
    """A link to one card."""

    name: str = "card"

    def __init_subclass__(cls, **kwargs: object) -> None:
        """Every backend's transmit_raw gets the base's checks (_checked), whoever calls it."""
        super().__init_subclass__(**kwargs)
        raw = cls.__dict__.get("transmit_raw")
        if raw is not None and not getattr(raw, "checked", False):
            cls.transmit_raw = _checked(raw)  # type: ignore[method-assign]

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

    # -- shared behaviour
    def __enter__(self) -> Transport:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def exchange(self, command: CommandAPDU) -> ResponseAPDU:
        """One command, with no status word handling at all."""
        started = time.perf_counter()
        response = ResponseAPDU.from_bytes(self.transmit_raw(command.to_bytes()))
        if self.trace is not None:
            self.trace.record(command, response, started)
        return response

    def transmit(self, command: CommandAPDU) -> ResponseAPDU:
        """Sends a command the way a PC/SC application expects: 6Cxx re-sends the command with the
        right Le, 61xx collects the rest of the response with GET RESPONSE."""
        response = self.exchange(command)
        if response.sw1 not in (0x61, 0x6C):
            return response
        if response.sw1 == 0x6C:
            response = self.exchange(command.with_le(response.sw2 or 256))
        data = response.data
        for _ in range(_MAX_GET_RESPONSE):
            if response.sw1 != 0x61:
                return ResponseAPDU(data, response.sw)
            get_response = CommandAPDU(command.cla & 0x03, GET_RESPONSE_INS, 0, 0, le=response.sw2 or 256)
            response = self.exchange(get_response)
            data += response.data
        raise TransportError(f"the card kept answering 61xx after {_MAX_GET_RESPONSE} GET RESPONSE commands")

    def send(self, command: CommandAPDU, expected: Iterable[int] = (SW_OK,)) -> ResponseAPDU:
        """transmit() and check the status word: raises StatusError unless it is one of ``expected``."""
        return self.transmit(command).check(command, expected)

    def select(self, aid: bytes, expected: Iterable[int] = (SW_OK,)) -> ResponseAPDU:
        """SELECT by DF name (an applet AID), first occurrence, returning FCI."""
        return self.send(CommandAPDU(0x00, 0xA4, 0x04, 0x00, aid, le=256), expected)


APDU_TIMEOUT_ENV = "CARDSUITE_APDU_TIMEOUT"
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
    text = value if value is not None else env.get(APDU_TIMEOUT_ENV)
    if text is None or text == "":
        return DEFAULT_APDU_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86400:
        raise ConfigurationError(f"APDU timeout {text!r}: a number of seconds above 0 [{APDU_TIMEOUT_ENV}]")
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


class PcscTransport(Transport):
    """A reader through pyscard: a real card, or a simulated card behind vpcd. Every APDU has a deadline
    (``timeout`` seconds, default from CARDSUITE_APDU_TIMEOUT, else 30 s; card content management 4x)."""

    def __init__(self, reader: str | int, timeout: float | None = None) -> None:
        super().__init__()
        self.reader_spec = reader
        self.name = str(reader)
        self.timeout = apdu_timeout(timeout)
        self._connection = None
        self._watchdog: _Watchdog | None = None
        self._dead: str | None = None  # why the connection cannot be used any more

    @staticmethod
    def _readers() -> list:
        """pyscard's readers, or a TransportError that says what to do when PC/SC itself is missing."""
        try:
            from smartcard.Exceptions import ListReadersException
            from smartcard.pcsc.PCSCExceptions import BaseSCardException
            from smartcard.System import readers
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise TransportError(f"pyscard is not installed ({exc}); run `invoke setup`") from exc
        try:
            return readers()
        except (ListReadersException, BaseSCardException) as exc:
            raise TransportError(f"cannot list PC/SC readers ({exc}); is pcscd running? "
                                 "(`invoke sim` starts it with simulated cards)") from None

    @classmethod
    def reader_names(cls) -> list[str]:
        return [str(r) for r in cls._readers()]

    def _find_reader(self):
        found = self._readers()
        names = [str(r) for r in found]
        spec = self.reader_spec
        if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
            index = int(spec)
            if 0 <= index < len(found):
                return found[index]
        else:
            exact = [r for r in found if str(r) == spec]
            partial = [r for r in found if spec.lower() in str(r).lower()]
            if exact:
                return exact[0]
            if len(partial) == 1:
                return partial[0]
        listing = ", ".join(f"{i}: {n!r}" for i, n in enumerate(names)) or "none (is pcscd running?)"
        raise TransportError(f"no unique PC/SC reader matches {spec!r}; readers: {listing}")

    def connect(self) -> None:
        from smartcard.Exceptions import CardConnectionException, NoCardException
        from smartcard.scard import SCARD_LEAVE_CARD

        if self._connection is not None:
            return  # a second connection would replace this one, and the dropped one resets the card
        reader = self._find_reader()
        self.name = str(reader)
        before = _socket_fds()
        connection = reader.createConnection()  # its own PC/SC context: its own socket to pcscd
        watchdog = _Watchdog(sorted(_socket_fds() - before), self.timeout)
        watchdog.deadline = time.monotonic() + self.timeout  # a silent card can hold SCardConnect too
        try:
            # leave the card powered on disconnect: the next program finds it as this one left it
            connection.connect(disposition=SCARD_LEAVE_CARD)
        except (NoCardException, CardConnectionException) as exc:
            watchdog.stop()
            if watchdog.fired:
                raise TransportError(f"the card in {self.name!r} did not answer within {self.timeout:g} s "
                                     f"(set the APDU timeout with --apdu-timeout or {APDU_TIMEOUT_ENV})") from None
            raise TransportError(f"no card in reader {self.name!r}: {exc}") from exc
        watchdog.deadline = 0.0
        self._connection = connection
        self._watchdog = watchdog
        self._dead = None
        self._secured = False
        self._bind_handle()

    def _bind_handle(self) -> None:
        """Keeps pyscard's card handle and protocol header: transmit_raw calls SCardTransmit directly,
        skipping CardConnection's observer and locking layers (a third of the host-side cost per APDU)."""
        from smartcard.pcsc.PCSCCardConnection import translateprotocolheader

        connection = self._require()
        while not hasattr(connection, "hcard"):  # unwrap pyscard's decorators
            connection = connection.component
        self._pcsc = connection
        self._hcard = connection.hcard
        self._pci = translateprotocolheader(connection.getProtocol())

    def disconnect(self) -> None:
        """Disconnects, resetting the card when a command since the last reset may have left security
        state (a verified PIN must not outlive this program's use of it)."""
        from smartcard.scard import SCARD_LEAVE_CARD, SCARD_RESET_CARD, SCardDisconnect

        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        if self._watchdog is not None:
            self._watchdog.stop()
        try:
            if self._dead is None:
                SCardDisconnect(self._hcard, SCARD_RESET_CARD if self._secured else SCARD_LEAVE_CARD)
            self._pcsc.hcard = None  # pyscard's release finds the card handle done
            connection.release()
        except Exception:  # noqa: BLE001 - a dead pcscd socket: the context went with it
            self._pcsc.hcontext = None  # nothing left for pyscard's __del__ to release
        finally:
            self._secured = False
            self._flow_depth = 0

    def _require(self):
        if self._connection is None:
            raise TransportError(f"reader {self.name!r} is not connected")
        if self._dead is not None:
            raise TransportError(self._dead)
        return self._connection

    # -- exclusive flows: a PC/SC transaction (PC/SC part 5, SCardBeginTransaction)
    def _begin_exclusive(self) -> None:
        from smartcard.scard import SCardBeginTransaction

        self._require()
        self._call(lambda: SCardBeginTransaction(self._hcard), self.timeout * _FLOW_WAIT_FACTOR, "wait for")

    def _end_exclusive(self, reset: bool) -> None:
        from smartcard.scard import SCARD_LEAVE_CARD, SCARD_RESET_CARD, SCardEndTransaction

        if self._connection is None or self._dead is not None:
            return  # disconnected or dead: pcscd ended the transaction with the connection
        self._call(lambda: SCardEndTransaction(self._hcard, SCARD_RESET_CARD if reset else SCARD_LEAVE_CARD),
                   self.timeout, "reset" if reset else "release")

    def _call(self, call: Callable[[], int], timeout: float, what: str) -> None:
        """A PC/SC call on the card handle, under the watchdog; a card another program reset is taken
        back once (SCardReconnect), everything else is an error."""
        from smartcard.scard import SCARD_S_SUCCESS, SCARD_W_RESET_CARD, SCardGetErrorMessage

        for attempt in (1, 2):
            watchdog = self._watchdog
            assert watchdog is not None
            watchdog.deadline = time.monotonic() + timeout
            hresult = call()
            watchdog.deadline = 0.0
            if watchdog.fired:
                self._die(f"the card in {self.name!r} was not free or did not answer within {timeout:g} s "
                          f"(to {what} it); another program may hold it")
            if hresult == SCARD_W_RESET_CARD and attempt == 1:
                self._reconnect_after_reset()
                continue
            if hresult != SCARD_S_SUCCESS:
                self._raise_for(hresult, f"cannot {what} the card in {self.name!r}: {SCardGetErrorMessage(hresult)}")
            return

    def _reconnect_after_reset(self) -> None:
        """Another program reset the card (pcsc-lite then answers SCARD_W_RESET_CARD once to every other
        handle): take the handle back; whatever was selected is gone, the flow selects again."""
        from smartcard.scard import SCARD_LEAVE_CARD

        self._require().reconnect(disposition=SCARD_LEAVE_CARD)
        self._bind_handle()
        self._secured = False

    def _die(self, why: str) -> None:
        self._dead = why
        raise TransportError(why)

    def _raise_for(self, hresult: int, message: str) -> None:
        from smartcard.scard import SCARD_E_NO_SMARTCARD, SCARD_W_REMOVED_CARD

        if hresult in (SCARD_W_REMOVED_CARD, SCARD_E_NO_SMARTCARD) or self._card_gone():
            self._die(f"card removed from {self.name!r}")
        raise TransportError(message)

    def _card_gone(self) -> bool:
        """After a failure: whether the card left the reader, given pcscd a moment to notice."""
        from smartcard.scard import SCARD_E_NO_SMARTCARD, SCARD_S_SUCCESS, SCARD_W_REMOVED_CARD, SCardStatus

        deadline = time.monotonic() + _REMOVAL_WAIT
        while True:
            hresult, _reader, state, _protocol, _atr = SCardStatus(self._hcard)
            if hresult in (SCARD_W_REMOVED_CARD, SCARD_E_NO_SMARTCARD):
                return True
            if hresult != SCARD_S_SUCCESS:
                return False  # pcscd itself is gone: not a question of the card
            if not state & _SCARD_PRESENT:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    @property
    def atr(self) -> bytes:
        return bytes(self._require().getATR())

    def reset(self) -> bytes:
        from smartcard.scard import SCARD_RESET_CARD

        connection = self._require()
        connection.reconnect(disposition=SCARD_RESET_CARD)
        self._bind_handle()
        self._secured = False
        return self.atr

    def command_timeout(self, command: bytes) -> float:
        return self.timeout * (_CONTENT_MANAGEMENT_FACTOR if command[1] in _CONTENT_MANAGEMENT else 1)

    def transmit_raw(self, command: bytes) -> bytes:
        from smartcard.scard import SCARD_S_SUCCESS, SCARD_W_RESET_CARD, SCardGetErrorMessage, SCardTransmit

        self._require()
        watchdog = self._watchdog
        assert watchdog is not None
        timeout = self.command_timeout(command)
        watchdog.deadline = time.monotonic() + timeout  # the whole per-APDU cost of the timeout
        hresult, response = SCardTransmit(self._hcard, self._pci, list(command))
        watchdog.deadline = 0.0
        if watchdog.fired:
            self._die(f"the card in {self.name!r} did not answer within {timeout:g} s "
                      f"(set the APDU timeout with --apdu-timeout or {APDU_TIMEOUT_ENV})")
        if hresult == SCARD_W_RESET_CARD and not self.in_flow:
            # another program reset the card between our flows (pcsc-lite says so once, sending nothing):
            # a SELECT starts afresh anyway and goes again; any other command would reach whatever the
            # reset selected, so it is an error (a flow never sees this: its transaction keeps the card)
            self._reconnect_after_reset()
            if command[1] == SELECT_INS:
                return self.transmit_raw(command)
            raise TransportError(f"the card in {self.name!r} was reset by another program; select the "
                                 "application again")
        if hresult != SCARD_S_SUCCESS:
            self._raise_for(hresult, f"transmit failed on {self.name!r}: {SCardGetErrorMessage(hresult)}")
        if len(response) < 2:
            # vpcd answers an APDU to a card that went away with nothing at all
            self._raise_for(SCARD_S_SUCCESS, f"the card in {self.name!r} answered without a status word")
        return bytes(response)
