"""Command and response APDUs (ISO/IEC 7816-3/-4, short length fields) and status words.

Bytes and integer status words inside; hex only at the CLI and file edges.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cardsuite.codec import parse_hex
from cardsuite.errors import CardsuiteError
from cardsuite.masking import default_rules, masked, opaque_eq

SW_OK = 0x9000

# ISO/IEC 7816-4 (section 5.6) and GlobalPlatform meanings of whole status words.
_MEANINGS: dict[int, str] = {
    0x9000: "success",
    0x6200: "warning: state of non-volatile memory unchanged",
    0x6281: "warning: part of returned data may be corrupted",
    0x6282: "warning: end of file or record reached before reading Ne bytes",
    0x6283: "warning: selected file deactivated",
    0x6284: "warning: file control information not formatted per ISO 7816-4",
    0x6300: "warning: state of non-volatile memory changed (authentication failed)",
    0x6381: "warning: file filled up by the last write",
    0x6400: "execution error: state of non-volatile memory unchanged",
    0x6438: "GlobalPlatform: imported package not available (wrong Java Card version?)",
    0x6500: "execution error: state of non-volatile memory changed",
    0x6581: "execution error: memory failure",
    0x6700: "wrong length",
    0x6800: "functions in CLA not supported",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6883: "last command of the chain expected",
    0x6884: "command chaining not supported",
    0x6900: "command not allowed",
    0x6981: "command incompatible with file structure",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "reference data not usable",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed (no current EF)",
    0x6987: "expected secure messaging data objects missing",
    0x6988: "incorrect secure messaging data objects",
    0x6A80: "incorrect parameters in the command data field",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A84: "not enough memory space in the file",
    0x6A85: "Nc inconsistent with TLV structure",
    0x6A86: "incorrect parameters P1-P2",
    0x6A87: "Nc inconsistent with parameters P1-P2",
    0x6A88: "referenced data or reference data not found",
    0x6A89: "file already exists",
    0x6A8A: "DF name already exists",
    0x6B00: "wrong parameters P1-P2 (offset outside the EF)",
    0x6D00: "instruction code not supported or invalid",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}


def sw_meaning(sw: int) -> str:
    """The ISO 7816-4 meaning of a status word, including the parameterised ones (61xx, 6Cxx, 63Cx)."""
    if sw in _MEANINGS:
        return _MEANINGS[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return f"{sw2 or 256} more response bytes available"
    if sw1 == 0x6C:
        return f"wrong Le: exact length is {sw2 or 256}"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"verification failed, {sw2 & 0x0F} tries left"
    if sw1 in (0x62, 0x63, 0x64, 0x65, 0x67, 0x68, 0x69, 0x6A):
        return _MEANINGS.get(sw & 0xFF00, "unknown status") + f" (SW2={sw2:02X})"
    return "unknown status"


SW_VERIFICATION_BLOCKED = 0x6983  # "authentication method blocked": no tries left


def verification_tries_left(sw: int) -> int | None:
    """The tries a refused verification leaves (ISO 7816-4 VERIFY, CHANGE REFERENCE DATA: 63Cx, or 6983 when
    blocked); None when ``sw`` is no such refusal."""
    if sw >> 8 == 0x63 and sw & 0xF0 == 0xC0:
        return sw & 0x0F
    return 0 if sw == SW_VERIFICATION_BLOCKED else None


def format_sw(sw: int) -> str:
    return f"{sw:04X} ({sw_meaning(sw)})"


def _byte(name: str, value: int) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must be a byte (0..255), got {value!r}")
    return value


MAX_SHORT_NC = 255
MAX_SHORT_NE = 256
MAX_EXTENDED_NC = 65535
MAX_EXTENDED_NE = 65536


@opaque_eq  # a failed `==` in pytest shows the two reprs, not the data field by field
@dataclass(frozen=True, repr=False)
class CommandAPDU:
    """A command APDU. ``le`` is Ne: None for no Le field, 1..65536 otherwise. Short unless the data or Ne
    need more (Nc > 255 or Ne > 256): then extended (ISO 7816-4 5.1, ISO 7816-3 12.1.3), which only a card
    and an applet that take extended lengths (javacardx.apdu.ExtendedLength) accept.
    Its repr shows the data only where no masking rule hides it (a failing test prints reprs)."""

    cla: int
    ins: int
    p1: int = 0
    p2: int = 0
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            _byte(name, getattr(self, name))
        object.__setattr__(self, "data", bytes(self.data))
        if len(self.data) > MAX_EXTENDED_NC:
            raise ValueError(f"command data of {len(self.data)} bytes: an APDU carries at most "
                             f"{MAX_EXTENDED_NC}")
        if self.le is not None and not 1 <= self.le <= MAX_EXTENDED_NE:
            raise ValueError(f"Le must be 1..{MAX_EXTENDED_NE} (256 short is 00, 65536 extended is 0000), "
                             f"got {self.le}")

    @property
    def extended(self) -> bool:
        return len(self.data) > MAX_SHORT_NC or (self.le is not None and self.le > MAX_SHORT_NE)

    def __repr__(self) -> str:
        hidden = default_rules().for_command(self.cla, self.ins).data
        if not self.data:
            data = "-"
        else:
            data = masked(len(self.data), hidden) if hidden else self.data.hex().upper()
        return (f"CommandAPDU({self.cla:02X} {self.ins:02X} {self.p1:02X} {self.p2:02X}, Lc={len(self.data)}, "
                f"data={data}, Le={self.le})")

    def to_bytes(self) -> bytes:
        # the APDU is immutable: encoded once, on first use (a command sent again costs nothing here)
        try:
            return self._encoded  # type: ignore[attr-defined]
        except AttributeError:
            encoded = self._encode()
            object.__setattr__(self, "_encoded", encoded)
            return encoded

    def _encode(self) -> bytes:
        data, le = self.data, self.le
        header = (self.cla, self.ins, self.p1, self.p2)
        if not self.extended:
            if data:
                out = bytes((*header, len(data))) + data
                return out if le is None else out + bytes((le & 0xFF,))
            return bytes(header) if le is None else bytes((*header, le & 0xFF))
        # extended: 00 then two-byte Lc and/or Le; Le 65536 is 0000; the 00 only once, first
        out = bytes((*header, 0))
        if data:
            out += len(data).to_bytes(2, "big") + data
        if le is not None:
            out += (le & 0xFFFF).to_bytes(2, "big")
        return out

    @classmethod
    def from_bytes(cls, raw: bytes | bytearray | Iterable[int]) -> CommandAPDU:
        """Parses a command APDU of case 1 to 4, short or extended (ISO 7816-3 12.1.3); rejects anything
        inconsistent with a clear message."""
        raw = bytes(raw)
        if len(raw) < 4:
            raise ValueError(f"an APDU has at least 4 header bytes, got {len(raw)}")
        header, body = raw[:4], raw[4:]
        if not body:
            return cls(*header)
        if len(body) == 1:
            return cls(*header, le=body[0] or 256)
        if body[0] == 0:
            return cls._from_extended(header, body)
        lc = body[0]
        if len(body) == 1 + lc:
            return cls(*header, data=body[1:])
        if len(body) == 2 + lc:
            return cls(*header, data=body[1 : 1 + lc], le=body[-1] or 256)
        raise ValueError(f"Lc={lc} does not match the {len(body) - 1} bytes that follow it")

    @classmethod
    def _from_extended(cls, header: bytes, body: bytes) -> CommandAPDU:
        """After the header: 00 Le1 Le2 (2E), 00 Lc1 Lc2 data (3E), 00 Lc1 Lc2 data Le1 Le2 (4E)."""
        if len(body) < 3:
            raise ValueError("00 then one byte is neither a short nor an extended length")
        if len(body) == 3:
            return cls(*header, le=int.from_bytes(body[1:3], "big") or MAX_EXTENDED_NE)
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise ValueError("extended length Lc 0000: Lc is never 0")
        if len(body) == 3 + lc:
            return cls(*header, data=body[3:])
        if len(body) == 5 + lc:
            return cls(*header, data=body[3 : 3 + lc], le=int.from_bytes(body[-2:], "big") or MAX_EXTENDED_NE)
        raise ValueError(f"extended Lc={lc} does not match the {len(body) - 3} bytes that follow it")

    @classmethod
    def from_hex(cls, text: str) -> CommandAPDU:
        # an APDU may carry a PIN or a key: the message never repeats it
        return cls.from_bytes(parse_hex(text, "APDU", secret=True))

    def with_le(self, le: int | None) -> CommandAPDU:
        return CommandAPDU(self.cla, self.ins, self.p1, self.p2, self.data, le)


def select_by_name(aid: bytes) -> CommandAPDU:
    """SELECT by DF name (an application's AID), first occurrence, returning the FCI ([ISO 7816-4] 11.2.2)."""
    return CommandAPDU(0x00, 0xA4, 0x04, 0x00, aid, le=256)


@dataclass(frozen=True, slots=True)
class ResponseAPDU:
    data: bytes
    sw: int

    def __repr__(self) -> str:
        # the data's length only: what a response may show depends on its command (a key check value, a
        # card number, a signed payment: cardsuite.trace's rules), which the response does not know
        return f"ResponseAPDU({len(self.data)} bytes, SW={self.sw:04X})"

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResponseAPDU:
        if len(raw) < 2:
            raise ValueError(f"a response APDU has at least 2 status bytes, got {len(raw)}")
        if raw.__class__ is not bytes:
            raw = bytes(raw)
        if cls is not ResponseAPDU:
            return cls(raw[:-2], (raw[-2] << 8) | raw[-1])
        # every response from a card comes through here: its two slots filled directly, without the frozen
        # __init__'s frame and its two object.__setattr__ calls (a third of an in-process round trip's overhead)
        response = _new_object(cls)
        _set_data(response, raw[:-2])
        _set_sw(response, (raw[-2] << 8) | raw[-1])
        return response

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    def check(self, command: CommandAPDU | None = None, expected: Iterable[int] = (SW_OK,)) -> ResponseAPDU:
        """Returns self when the status word is one of ``expected``; raises StatusError otherwise."""
        expected = tuple(expected)
        if self.sw not in expected:
            raise StatusError(self.sw, command=command, expected=expected, data=self.data)
        return self


_new_object = object.__new__
_set_data = ResponseAPDU.__dict__["data"].__set__
_set_sw = ResponseAPDU.__dict__["sw"].__set__


class StatusError(CardsuiteError):
    """The card answered with a status word the command did not allow."""

    def __init__(
        self,
        sw: int,
        command: CommandAPDU | None = None,
        expected: tuple[int, ...] = (SW_OK,),
        data: bytes = b"",
    ) -> None:
        self.sw = sw
        self.command = command
        self.expected = expected
        self.data = data
        super().__init__(sw)

    @property
    def meaning(self) -> str:
        return sw_meaning(self.sw)

    def __str__(self) -> str:
        where = ""
        if self.command is not None:
            c = self.command
            where = f" to {c.cla:02X} {c.ins:02X} {c.p1:02X} {c.p2:02X}"
        wanted = ", ".join(f"{sw:04X}" for sw in self.expected)
        return f"card answered {format_sw(self.sw)}{where}; expected {wanted}"
