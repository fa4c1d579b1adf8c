"""Transports: one interface, a PC/SC reader (real card, or the simulator over vpcd) and the
in-process simulator. Each backend only moves raw bytes; 61xx/6Cxx handling, status-word checks and
tracing live once, here in the base class.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterable

from .apdu import SW_OK, CommandAPDU, ResponseAPDU
from .errors import TransportError
from .trace import Trace

GET_RESPONSE_INS = 0xC0
_MAX_GET_RESPONSE = 64  # a card answering 61xx forever is broken; stop rather than loop


class Transport(ABC):
    """A link to one card."""

    name: str = "card"

    def __init__(self) -> None:
        self.trace: Trace | None = None

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


class PcscTransport(Transport):
    """A reader through pyscard: a real card, or a simulated card behind vpcd."""

    def __init__(self, reader: str | int) -> None:
        super().__init__()
        self.reader_spec = reader
        self.name = str(reader)
        self._connection = None

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
        connection = reader.createConnection()
        try:
            # leave the card powered on disconnect: the next program finds it as this one left it
            connection.connect(disposition=SCARD_LEAVE_CARD)
        except (NoCardException, CardConnectionException) as exc:
            raise TransportError(f"no card in reader {self.name!r}: {exc}") from exc
        self._connection = connection
        self._bind_handle()

    def _bind_handle(self) -> None:
        """Keeps pyscard's card handle and protocol header: transmit_raw calls SCardTransmit directly,
        skipping CardConnection's observer and locking layers (a third of the host-side cost per APDU)."""
        from smartcard.pcsc.PCSCCardConnection import translateprotocolheader

        connection = self._require()
        while not hasattr(connection, "hcard"):  # unwrap pyscard's decorators
            connection = connection.component
        self._hcard = connection.hcard
        self._pci = translateprotocolheader(connection.getProtocol())

    def disconnect(self) -> None:
        if self._connection is not None:
            try:
                self._connection.disconnect()
            finally:
                self._connection = None

    def _require(self):
        if self._connection is None:
            raise TransportError(f"reader {self.name!r} is not connected")
        return self._connection

    @property
    def atr(self) -> bytes:
        return bytes(self._require().getATR())

    def reset(self) -> bytes:
        from smartcard.scard import SCARD_RESET_CARD

        connection = self._require()
        connection.reconnect(disposition=SCARD_RESET_CARD)
        self._bind_handle()
        return self.atr

    def transmit_raw(self, command: bytes) -> bytes:
        from smartcard.scard import SCARD_S_SUCCESS, SCardGetErrorMessage, SCardTransmit

        self._require()
        hresult, response = SCardTransmit(self._hcard, self._pci, list(command))
        if hresult != SCARD_S_SUCCESS:
            raise TransportError(f"transmit failed on {self.name!r}: {SCardGetErrorMessage(hresult)}")
        if len(response) < 2:
            raise TransportError(f"the card in {self.name!r} answered without a status word")
        return bytes(response)
