"""A typed ISO/IEC 7816-4 file system client: SELECT variants, binary and record commands, file
management, and FCP decoding. One method per command; status words checked once, in the transport."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .apdu import SW_OK, CommandAPDU, ResponseAPDU
from .tlv import parse_tlv
from .transport import Transport

SW_END_OF_FILE = 0x6282
SW_RECORD_NOT_FOUND = 0x6A83
MAX_CHUNK = 256  # short APDUs carry at most 256 response bytes
MAX_DATA = 255  # and at most 255 command bytes

INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_WRITE_BINARY = 0xD0
INS_UPDATE_BINARY = 0xD6
INS_ERASE_BINARY = 0x0E
INS_READ_RECORD = 0xB2
INS_WRITE_RECORD = 0xD2
INS_UPDATE_RECORD = 0xDC
INS_APPEND_RECORD = 0xE2
INS_SEARCH_RECORD = 0xA2
INS_CREATE_FILE = 0xE0
INS_DELETE_FILE = 0xE4
INS_ACTIVATE_FILE = 0x44
INS_DEACTIVATE_FILE = 0x04
INS_VERIFY = 0x20


class SelectBy(enum.IntEnum):
    """SELECT P1 (ISO/IEC 7816-4 table 39)."""

    FID = 0x00  # MF, DF or EF by file identifier (3F00 or empty data: the MF)
    CHILD_DF = 0x01
    EF_UNDER_CURRENT_DF = 0x02
    PARENT_DF = 0x03
    DF_NAME = 0x04
    PATH_FROM_MF = 0x08
    PATH_FROM_CURRENT_DF = 0x09


class SelectReturn(enum.IntEnum):
    """SELECT P2 bits b4-b3 (table 40): what the response carries."""

    FCI = 0x00
    FCP = 0x04
    FMD = 0x08
    NONE = 0x0C


class Occurrence(enum.IntEnum):
    """SELECT P2 bits b2-b1: which DF name match."""

    FIRST = 0x00
    LAST = 0x01
    NEXT = 0x02
    PREVIOUS = 0x03


class Structure(enum.Enum):
    DF = "DF"
    TRANSPARENT = "transparent"
    LINEAR_FIXED = "linear fixed"
    LINEAR_VARIABLE = "linear variable"
    CYCLIC = "cyclic"
    UNKNOWN = "unknown"

    @property
    def is_record(self) -> bool:
        return self in (Structure.LINEAR_FIXED, Structure.LINEAR_VARIABLE, Structure.CYCLIC)


_EF_STRUCTURES = {1: Structure.TRANSPARENT, 2: Structure.LINEAR_FIXED, 3: Structure.LINEAR_FIXED,
                  4: Structure.LINEAR_VARIABLE, 5: Structure.LINEAR_VARIABLE, 6: Structure.CYCLIC,
                  7: Structure.CYCLIC}


class LifeCycle(enum.Enum):
    """Life cycle status byte (ISO/IEC 7816-4 table 15)."""

    NO_INFORMATION = "no information"
    CREATION = "creation"
    INITIALISATION = "initialisation"
    ACTIVATED = "operational, activated"
    DEACTIVATED = "operational, deactivated"
    TERMINATED = "termination"
    PROPRIETARY = "proprietary"

    @classmethod
    def decode(cls, value: int) -> LifeCycle:
        if value == 0x00:
            return cls.NO_INFORMATION
        if value == 0x01:
            return cls.CREATION
        if value == 0x03:
            return cls.INITIALISATION
        if value & 0xFD == 0x05:
            return cls.ACTIVATED
        if value & 0xFD == 0x04:
            return cls.DEACTIVATED
        if value & 0xFC == 0x0C:
            return cls.TERMINATED
        return cls.PROPRIETARY


@dataclass(frozen=True)
class FileControlParameters:
    """The FCP template (tag 62) a SELECT returns, decoded."""

    raw: bytes
    fid: int | None = None
    size: int | None = None  # tag 80: bytes of data (EF) or of the DF's content
    structure: Structure = Structure.UNKNOWN
    record_size: int | None = None  # fixed record size, or the maximum for variable records
    record_count: int | None = None
    df_name: bytes | None = None
    sfi: int | None = None
    life_cycle: LifeCycle = LifeCycle.NO_INFORMATION
    proprietary: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def decode(cls, data: bytes) -> FileControlParameters:
        items = parse_tlv(data)
        if len(items) == 1 and items[0][0] in (0x62, 0x6F):
            inner = parse_tlv(items[0][1])
        else:
            inner = items
        values: dict = {"raw": bytes(data), "proprietary": {}}
        for tag, value in inner:
            if tag == 0x80 or (tag == 0x81 and "size" not in values):
                values["size"] = int.from_bytes(value, "big")
            elif tag == 0x82 and value:
                values.update(_decode_descriptor(value))
            elif tag == 0x83:
                values["fid"] = int.from_bytes(value, "big")
            elif tag == 0x84:
                values["df_name"] = bytes(value)
            elif tag == 0x88:
                values["sfi"] = value[0] >> 3 if value else None  # b8-b4 of the byte
            elif tag == 0x8A and value:
                values["life_cycle"] = LifeCycle.decode(value[0])
            else:
                values["proprietary"][tag] = bytes(value)
        return cls(**values)


def _decode_descriptor(value: bytes) -> dict:
    descriptor = value[0]
    result: dict = {}
    if descriptor & 0x38 == 0x38:
        result["structure"] = Structure.DF
    else:
        result["structure"] = _EF_STRUCTURES.get(descriptor & 0x07, Structure.UNKNOWN)
    rest = value[2:]  # skip the data coding byte
    if len(rest) in (1, 2):  # maximum record size only
        result["record_size"] = int.from_bytes(rest, "big")
    elif len(rest) == 3:  # record size (2) + number of records (1)
        result["record_size"] = int.from_bytes(rest[:2], "big")
        result["record_count"] = rest[2]
    elif len(rest) == 4:
        result["record_size"] = int.from_bytes(rest[:2], "big")
        result["record_count"] = int.from_bytes(rest[2:], "big")
    return result


def _fid_bytes(fid: int) -> bytes:
    if not 0 <= fid <= 0xFFFF:
        raise ValueError(f"a file identifier has 2 bytes, got {fid:#x}")
    return fid.to_bytes(2, "big")


def parse_path(text: str) -> list[int]:
    """'3F00/5000/5001' or '3F0050005001' → [0x3F00, 0x5000, 0x5001]."""
    cleaned = text.replace("/", "").replace(" ", "").replace(":", "")
    if not cleaned or len(cleaned) % 4:
        raise ValueError(f"a path is a sequence of 4-hex-digit file identifiers, got {text!r}")
    try:
        return [int(cleaned[i : i + 4], 16) for i in range(0, len(cleaned), 4)]
    except ValueError:
        raise ValueError(f"not a hex path: {text!r}") from None


def _check_sfi(sfi: int) -> int:
    if not 1 <= sfi <= 30:
        raise ValueError(f"a short EF identifier is 1..30, got {sfi}")
    return sfi


class IsoFileSystem:
    """ISO/IEC 7816-4 commands on the currently selected application (or card)."""

    def __init__(self, transport: Transport, cla: int = 0x00) -> None:
        self.transport = transport
        self.cla = cla

    def _send(self, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None, *,
              expected: Iterable[int] = (SW_OK,)) -> ResponseAPDU:
        return self.transport.send(CommandAPDU(self.cla, ins, p1, p2, data, le), expected)

    # ---------------------------------------------------------------- SELECT
    def select(self, by: SelectBy, data: bytes = b"", returns: SelectReturn = SelectReturn.FCP,
               occurrence: Occurrence = Occurrence.FIRST) -> FileControlParameters | None:
        le = None if returns is SelectReturn.NONE else 256
        response = self._send(INS_SELECT, by, returns | occurrence, data, le)
        if returns is SelectReturn.NONE or not response.data:
            return None
        return FileControlParameters.decode(response.data)

    def select_mf(self, returns: SelectReturn = SelectReturn.FCP) -> FileControlParameters | None:
        return self.select(SelectBy.FID, _fid_bytes(0x3F00), returns)

    def select_fid(self, fid: int, returns: SelectReturn = SelectReturn.FCP) -> FileControlParameters | None:
        return self.select(SelectBy.FID, _fid_bytes(fid), returns)

    def select_child_df(self, fid: int, returns: SelectReturn = SelectReturn.FCP) -> FileControlParameters | None:
        return self.select(SelectBy.CHILD_DF, _fid_bytes(fid), returns)

    def select_ef(self, fid: int, returns: SelectReturn = SelectReturn.FCP) -> FileControlParameters | None:
        return self.select(SelectBy.EF_UNDER_CURRENT_DF, _fid_bytes(fid), returns)

    def select_parent(self, returns: SelectReturn = SelectReturn.FCP) -> FileControlParameters | None:
        return self.select(SelectBy.PARENT_DF, b"", returns)

    def select_df_name(self, name: bytes, returns: SelectReturn = SelectReturn.FCP,
                       occurrence: Occurrence = Occurrence.FIRST) -> FileControlParameters | None:
        return self.select(SelectBy.DF_NAME, name, returns, occurrence)

    def select_path(self, path: Sequence[int], from_mf: bool = True,
                    returns: SelectReturn = SelectReturn.FCP) -> FileControlParameters | None:
        """Path without the MF's 3F00 when from the MF (ISO 7816-4 5.3.1.2), from the current DF otherwise."""
        ids = list(path)
        if from_mf and ids and ids[0] == 0x3F00:
            ids = ids[1:]
        if not ids:
            return self.select_mf(returns)
        by = SelectBy.PATH_FROM_MF if from_mf else SelectBy.PATH_FROM_CURRENT_DF
        return self.select(by, b"".join(_fid_bytes(f) for f in ids), returns)

    # ---------------------------------------------------------------- binary
    @staticmethod
    def _binary_p1p2(offset: int, sfi: int | None) -> tuple[int, int]:
        if sfi is not None:
            if not 0 <= offset <= 0xFF:
                raise ValueError(f"with an SFI the offset is one byte (0..255), got {offset}")
            return 0x80 | _check_sfi(sfi), offset
        if not 0 <= offset <= 0x7FFF:
            raise ValueError(f"the offset is 0..32767, got {offset}")
        return offset >> 8, offset & 0xFF

    def read_binary(self, offset: int = 0, length: int | None = None, sfi: int | None = None) -> bytes:
        """Reads ``length`` bytes (all to the end of the file when None), in as many commands as needed."""
        out = b""
        first = True
        while length is None or len(out) < length:
            want = MAX_CHUNK if length is None else min(MAX_CHUNK, length - len(out))
            p1, p2 = self._binary_p1p2(offset + len(out), sfi if first else None)
            response = self._send(INS_READ_BINARY, p1, p2, le=want,
                                  expected=(SW_OK, SW_END_OF_FILE) if length is None else (SW_OK,))
            out += response.data
            first = False
            if sfi is not None:
                sfi = None  # the EF is now current: continue by offset
            if response.sw == SW_END_OF_FILE or not response.data or (length is None and len(response.data) < want):
                break
        return out

    def _write_binary(self, ins: int, offset: int, data: bytes, sfi: int | None) -> None:
        written = 0
        while written < len(data) or not data:
            chunk = data[written : written + MAX_DATA]
            p1, p2 = self._binary_p1p2(offset + written, sfi if written == 0 else None)
            self._send(ins, p1, p2, chunk)
            written += len(chunk)
            if not data:
                break

    def update_binary(self, offset: int, data: bytes, sfi: int | None = None) -> None:
        self._write_binary(INS_UPDATE_BINARY, offset, data, sfi)

    def write_binary(self, offset: int, data: bytes, sfi: int | None = None) -> None:
        self._write_binary(INS_WRITE_BINARY, offset, data, sfi)

    def erase_binary(self, offset: int = 0, sfi: int | None = None) -> None:
        p1, p2 = self._binary_p1p2(offset, sfi)
        self._send(INS_ERASE_BINARY, p1, p2)

    # ---------------------------------------------------------------- records
    @staticmethod
    def _record_p2(sfi: int | None, mode: int) -> int:
        return ((_check_sfi(sfi) << 3) if sfi is not None else 0) | mode

    def read_record(self, number: int, sfi: int | None = None) -> bytes:
        """READ RECORD, record number in P1 (P2 b3-b1 = 100)."""
        if not 1 <= number <= 0xFE:
            raise ValueError(f"a record number is 1..254, got {number}")
        return self._send(INS_READ_RECORD, number, self._record_p2(sfi, 0x04), le=256).data

    def read_records(self, sfi: int | None = None) -> list[bytes]:
        """Every record, 1 upwards, until the card answers 'record not found'."""
        records: list[bytes] = []
        for number in range(1, 0xFF):
            response = self._send(INS_READ_RECORD, number, self._record_p2(sfi, 0x04), le=256,
                                  expected=(SW_OK, SW_RECORD_NOT_FOUND))
            if response.sw == SW_RECORD_NOT_FOUND:
                break
            records.append(response.data)
            sfi = None
        return records

    def update_record(self, number: int, data: bytes, sfi: int | None = None) -> None:
        self._send(INS_UPDATE_RECORD, number, self._record_p2(sfi, 0x04), data)

    def write_record(self, number: int, data: bytes, sfi: int | None = None) -> None:
        self._send(INS_WRITE_RECORD, number, self._record_p2(sfi, 0x04), data)

    def append_record(self, data: bytes, sfi: int | None = None) -> None:
        self._send(INS_APPEND_RECORD, 0x00, self._record_p2(sfi, 0x00), data)

    def search_record(self, pattern: bytes, start: int = 1, sfi: int | None = None) -> list[int]:
        """Simple search (P2 b3-b1 = 100: from record P1 upwards): the numbers of matching records."""
        return list(self._send(INS_SEARCH_RECORD, start, self._record_p2(sfi, 0x04), pattern, le=256).data)

    # ---------------------------------------------------------------- management
    def create_file(self, fcp: bytes) -> None:
        self._send(INS_CREATE_FILE, 0x00, 0x00, fcp)

    def delete_file(self, fid: int | None = None) -> None:
        """DELETE FILE of the child ``fid``, or of the current file when None."""
        self._send(INS_DELETE_FILE, 0x00, 0x00, _fid_bytes(fid) if fid is not None else b"")

    def activate_file(self, fid: int | None = None) -> None:
        self._send(INS_ACTIVATE_FILE, 0x00, 0x00, _fid_bytes(fid) if fid is not None else b"")

    def deactivate_file(self, fid: int | None = None) -> None:
        self._send(INS_DEACTIVATE_FILE, 0x00, 0x00, _fid_bytes(fid) if fid is not None else b"")

    def verify(self, pin: bytes, reference: int = 0x80, expected: Iterable[int] = (SW_OK,)) -> ResponseAPDU:
        return self._send(INS_VERIFY, 0x00, reference, pin, expected=expected)
