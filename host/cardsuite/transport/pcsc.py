"""A PC/SC reader through pyscard: a real card, or a simulated card behind vpcd."""

from __future__ import annotations

import time
from collections.abc import Callable

from cardsuite.errors import TransportError
from cardsuite.settings import ENV_APDU_TIMEOUT
from cardsuite.transport.base import (
    _CONTENT_MANAGEMENT,
    _CONTENT_MANAGEMENT_FACTOR,
    _FLOW_WAIT_FACTOR,
    _REMOVAL_WAIT,
    _SCARD_PRESENT,
    SELECT_INS,
    Transport,
    _socket_fds,
    _Watchdog,
    apdu_timeout,
)

# resets by other programs one PC/SC call takes back before it gives up: each racing program resets
# the card once at the end of its flow (SCardEndTransaction with SCARD_RESET_CARD)
_RESETS_TAKEN_BACK = 8


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
        self._fresh = False  # connected and no command sent yet (see transmit_raw)

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
                                     f"(set the APDU timeout with --apdu-timeout or {ENV_APDU_TIMEOUT})") from None
            raise TransportError(f"no card in reader {self.name!r}: {exc}") from exc
        watchdog.deadline = 0.0
        self._connection = connection
        self._watchdog = watchdog
        self._dead = None
        self._secured = False
        self._fresh = True  # no command sent on this connection yet
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
        back (SCardReconnect) and the call made again, up to _RESETS_TAKEN_BACK times (other programs
        ending their own flows may each reset it between our reconnect and our retry); everything else
        is an error."""
        from smartcard.scard import SCARD_S_SUCCESS, SCARD_W_RESET_CARD, SCardGetErrorMessage

        for attempt in range(_RESETS_TAKEN_BACK + 1):
            watchdog = self._watchdog
            assert watchdog is not None
            watchdog.deadline = time.monotonic() + timeout
            hresult = call()
            watchdog.deadline = 0.0
            if watchdog.fired:
                self._die(f"the card in {self.name!r} was not free or did not answer within {timeout:g} s "
                          f"(to {what} it); another program may hold it")
            if hresult == SCARD_W_RESET_CARD and attempt < _RESETS_TAKEN_BACK:
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
        from smartcard.scard import (
            SCARD_E_PROTO_MISMATCH,
            SCARD_S_SUCCESS,
            SCARD_W_RESET_CARD,
            SCardGetErrorMessage,
            SCardTransmit,
        )

        self._require()
        watchdog = self._watchdog
        assert watchdog is not None
        timeout = self.command_timeout(command)
        watchdog.deadline = time.monotonic() + timeout  # the whole per-APDU cost of the timeout
        hresult, response = SCardTransmit(self._hcard, self._pci, list(command))
        watchdog.deadline = 0.0
        if watchdog.fired:
            self._die(f"the card in {self.name!r} did not answer within {timeout:g} s "
                      f"(set the APDU timeout with --apdu-timeout or {ENV_APDU_TIMEOUT})")
        if hresult == SCARD_W_RESET_CARD and not self.in_flow:
            # another program reset the card between our flows (pcsc-lite says so once, sending nothing):
            # a SELECT starts afresh anyway and goes again; any other command would reach whatever the
            # reset selected, so it is an error (a flow never sees this: its transaction keeps the card)
            self._reconnect_after_reset()
            if command[1] == SELECT_INS:
                return self.transmit_raw(command)
            raise TransportError(f"the card in {self.name!r} was reset by another program; select the "
                                 "application again")
        fresh, self._fresh = self._fresh, False
        if hresult == SCARD_E_PROTO_MISMATCH and fresh:
            # pcsc-lite powered the card up again after our connect (a program that held it died: its
            # transaction ended with a reset) and chose the protocol anew: nothing reached the card and
            # nothing of ours was on it yet, so the handle is taken back and the command goes again
            self._reconnect_after_reset()
            return self.transmit_raw(command)
        if hresult != SCARD_S_SUCCESS:
            self._raise_for(hresult, f"transmit failed on {self.name!r}: {SCardGetErrorMessage(hresult)}")
        if len(response) < 2:
            # vpcd answers an APDU to a card that went away with nothing at all
            self._raise_for(SCARD_S_SUCCESS, f"the card in {self.name!r} answered without a status word")
        return bytes(response)
