"""A typed ISO/IEC 7816-4 file system client: SELECT variants, binary and record commands, file
management, FCP decoding and tree walking. One method per command; status words are checked once,
in the transport (a refused command raises StatusError with the status word and its meaning).

Record commands always ask Le = 00 ("up to 256 bytes"): a record fits, so the card never answers
6Cxx, and the record pointer (moved by first/last/next/previous before the length check) moves once.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from cardsuite.apdu import SW_OK, CommandAPDU, ResponseAPDU, StatusError
from cardsuite.tlv import encode_tlv, parse_tlv
from cardsuite.transport.base import Transport

SW_END_OF_FILE = 0x6282
SW_SELECTED_DEACTIVATED = 0x6283
SW_SELECTED_TERMINATED = 0x6285
SW_RECORD_NOT_FOUND = 0x6A83
SW_WRONG_P1P2_OFFSET = 0x6B00
MAX_CHUNK = 256  # short APDUs carry at most 256 response bytes
MAX_DATA = 255  # and at most 255 command bytes
FID_MF = 0x3F00

INS_DEACTIVATE_FILE = 0x04
INS_ERASE_BINARY = 0x0E
INS_VERIFY = 0x20
INS_CHANGE_REFERENCE_DATA = 0x24
INS_RESET_RETRY_COUNTER = 0x2C
INS_GET_CHALLENGE = 0x84
INS_ACTIVATE_FILE = 0x44
INS_SEARCH_RECORD = 0xA2
INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_READ_RECORD = 0xB2
INS_WRITE_BINARY = 0xD0
INS_WRITE_RECORD = 0xD2
INS_UPDATE_BINARY = 0xD6
INS_UPDATE_RECORD = 0xDC
INS_CREATE_FILE = 0xE0
INS_APPEND_RECORD = 0xE2
INS_DELETE_FILE = 0xE4
INS_TERMINATE_DF = 0xE6
INS_TERMINATE_EF = 0xE8

# FCP tags (ISO/IEC 7816-4 table 12) and the library's proprietary child list.
TAG_FCP = 0x62
TAG_FMD = 0x64
TAG_FCI = 0x6F
TAG_SIZE = 0x80
TAG_TOTAL_SIZE = 0x81
TAG_DESCRIPTOR = 0x82
TAG_FID = 0x83
TAG_DF_NAME = 0x84
TAG_CHILDREN = 0x85  # cardsuite.isocmd: the FIDs of a DF's children (applets/isocmd/README.md)
TAG_SECURITY = 0x86
TAG_SFI = 0x88
TAG_SECURITY_COMPACT = 0x8C  # ISO/IEC 7816-4 compact security attributes: AM byte, SC bytes
TAG_LCS = 0x8A
TAG_RECORD = 0x04  # each record in a READ RECORDS response


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


class RecordMode(enum.IntEnum):
    """READ / UPDATE / WRITE RECORD P2 bits b3-b1 (ISO/IEC 7816-4 table 49)."""

    FIRST = 0b000  # P1 00; these four move the record pointer
    LAST = 0b001
    NEXT = 0b010
    PREVIOUS = 0b011
    NUMBER = 0b100  # record number P1 (00: the current record)
    FROM_NUMBER = 0b101  # READ RECORDS: P1 up to the last
    TO_NUMBER = 0b110  # READ RECORDS: the last down to P1


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

    @property
    def descriptor(self) -> int:
        """The file descriptor byte CREATE FILE takes for this structure."""
        return _DESCRIPTORS[self]


_EF_STRUCTURES = {1: Structure.TRANSPARENT, 2: Structure.LINEAR_FIXED, 3: Structure.LINEAR_FIXED,
                  4: Structure.LINEAR_VARIABLE, 5: Structure.LINEAR_VARIABLE, 6: Structure.CYCLIC,
                  7: Structure.CYCLIC}
_DESCRIPTORS = {Structure.DF: 0x38, Structure.TRANSPARENT: 0x01, Structure.LINEAR_FIXED: 0x02,
                Structure.LINEAR_VARIABLE: 0x04, Structure.CYCLIC: 0x06}


class FileLifeCycle(enum.Enum):
    """Life cycle status byte (ISO/IEC 7816-4 table 15)."""

    NO_INFORMATION = "no information"
    CREATION = "creation"
    INITIALISATION = "initialisation"
    ACTIVATED = "operational, activated"
    DEACTIVATED = "operational, deactivated"
    TERMINATED = "termination"
    PROPRIETARY = "proprietary"

    @classmethod
    def decode(cls, value: int) -> FileLifeCycle:
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


class Access(enum.IntEnum):
    """Slots of the library's access conditions (tag 86, one byte each, in this order)."""

    READ = 0
    UPDATE = 1
    APPEND = 2  # APPEND RECORD on an EF; CREATE FILE in a DF
    DELETE = 3
    ADMIN = 4  # ACTIVATE, DEACTIVATE, TERMINATE


AC_ALWAYS = 0x00
AC_NEVER = 0xFF


def describe_condition(value: int) -> str:
    if value == AC_ALWAYS:
        return "always"
    if value == AC_NEVER:
        return "never"
    return f"key {value:02X}"


@dataclass(frozen=True)
class FileControlParameters:
    """The FCP (tag 62), FCI (6F) or FMD (64) a SELECT returns, decoded."""

    raw: bytes
    fid: int | None = None
    size: int | None = None  # tag 80: bytes of data (EF), record budget (linear variable)
    descriptor: int | None = None
    structure: Structure = Structure.UNKNOWN
    data_coding: int | None = None
    record_size: int | None = None  # fixed record size, or the maximum for variable records
    record_count: int | None = None  # records present (cardsuite.isocmd)
    df_name: bytes | None = None
    sfi: int | None = None
    life_cycle: FileLifeCycle = FileLifeCycle.NO_INFORMATION
    access: bytes | None = None  # tag 86, the library's five conditions (see Access)
    compact: bytes | None = None  # tag 8C: the same conditions in ISO's compact form (AM byte, SC bytes)
    children: tuple[int, ...] | None = None  # tag 85 of a DF (cardsuite.isocmd)
    proprietary: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def decode(cls, data: bytes) -> FileControlParameters:
        values: dict = {"raw": bytes(data), "proprietary": {}}
        for tag, value in _flatten(parse_tlv(data)):
            if tag == TAG_SIZE or (tag == TAG_TOTAL_SIZE and "size" not in values):
                values["size"] = int.from_bytes(value, "big")
            elif tag == TAG_DESCRIPTOR and value:
                values.update(_decode_descriptor(value))
            elif tag == TAG_FID:
                values["fid"] = int.from_bytes(value, "big")
            elif tag == TAG_DF_NAME:
                values["df_name"] = bytes(value)
            elif tag == TAG_SFI:
                values["sfi"] = (value[0] >> 3) or None if value else None  # b8-b4; 88 00: no SFI
            elif tag == TAG_LCS and value:
                values["life_cycle"] = FileLifeCycle.decode(value[0])
            elif tag == TAG_SECURITY:
                values["access"] = bytes(value)
            elif tag == TAG_SECURITY_COMPACT:
                values["compact"] = bytes(value)
            elif tag == TAG_CHILDREN and len(value) % 2 == 0:
                values["children"] = tuple(int.from_bytes(value[i : i + 2], "big") for i in range(0, len(value), 2))
            else:
                values["proprietary"][tag] = bytes(value)
        return cls(**values)

    @property
    def is_df(self) -> bool:
        return self.structure is Structure.DF

    def condition(self, operation: Access) -> int | None:
        return self.access[operation] if self.access is not None and len(self.access) > operation else None

    def summary(self) -> str:
        """One line for people: '5002 linear fixed, 3 of 16-byte records, SFI 02, activated'."""
        parts = [f"{self.fid:04X}" if self.fid is not None else "????", self.structure.value]
        if self.structure is Structure.TRANSPARENT and self.size is not None:
            parts.append(f"{self.size} bytes")
        elif self.structure is Structure.LINEAR_VARIABLE:
            parts.append(f"{self.record_count} records of up to {self.record_size} bytes in {self.size}")
        elif self.structure.is_record:
            parts.append(f"{self.record_count} records of {self.record_size} bytes")
        if self.df_name:
            parts.append(f"name {self.df_name.hex().upper()}")
        if self.sfi:
            parts.append(f"SFI {self.sfi:02X}")
        parts.append(self.life_cycle.value)
        if self.access is not None and len(self.access) == len(Access):
            parts.append(" ".join(f"{op.name.lower()}:{describe_condition(self.access[op])}" for op in Access))
        return ", ".join(parts)


def _flatten(items: list[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    """The objects inside an FCP/FCI/FMD template, with nested 62/64 templates opened (FCI may nest them)."""
    for tag, value in items:
        if tag in (TAG_FCP, TAG_FCI, TAG_FMD):
            yield from _flatten(parse_tlv(value))
        else:
            yield tag, value


def _decode_descriptor(value: bytes) -> dict:
    descriptor = value[0]
    result: dict = {"descriptor": descriptor}
    if descriptor & 0x38 == 0x38:
        result["structure"] = Structure.DF
    else:
        result["structure"] = _EF_STRUCTURES.get(descriptor & 0x07, Structure.UNKNOWN)
    if len(value) > 1:
        result["data_coding"] = value[1]
    rest = value[2:]
    if len(rest) in (1, 2):  # maximum record size only
        result["record_size"] = int.from_bytes(rest, "big")
    elif len(rest) == 3:  # record size (2) + number of records (1)
        result["record_size"] = int.from_bytes(rest[:2], "big")
        result["record_count"] = rest[2]
    elif len(rest) == 4:
        result["record_size"] = int.from_bytes(rest[:2], "big")
        result["record_count"] = int.from_bytes(rest[2:], "big")
    return result


def encode_fcp(fid: int, structure: Structure, *, size: int | None = None, record_size: int | None = None,
               records: int | None = None, sfi: int | None = None, df_name: bytes | None = None,
               life_cycle: int | None = None, access: bytes | None = None) -> bytes:
    """The FCP template (62) CREATE FILE takes (ISO/IEC 7816-9 6.1): tags 80, 82, 83, 84, 88, 8A, 86."""
    body = b""
    if size is not None:
        body += encode_tlv(TAG_SIZE, size.to_bytes(2, "big"))
    descriptor = bytes((structure.descriptor,))
    if structure.is_record:
        descriptor += bytes((0x41,)) + (record_size or 0).to_bytes(2, "big")
        if records is not None:
            descriptor += bytes((records,))
    body += encode_tlv(TAG_DESCRIPTOR, descriptor)
    body += encode_tlv(TAG_FID, _fid_bytes(fid))
    if df_name is not None:
        body += encode_tlv(TAG_DF_NAME, df_name)
    if sfi is not None:
        body += encode_tlv(TAG_SFI, bytes((_check_sfi(sfi) << 3,)))
    if life_cycle is not None:
        body += encode_tlv(TAG_LCS, bytes((life_cycle,)))
    if access is not None:
        body += encode_tlv(TAG_SECURITY, access)
    return encode_tlv(TAG_FCP, body)


# ---------------------------------------------------------------- paths and file references


def _fid_bytes(fid: int) -> bytes:
    if not 0 <= fid <= 0xFFFF:
        raise ValueError(f"a file identifier has 2 bytes, got {fid:#x}")
    return fid.to_bytes(2, "big")


def _check_sfi(sfi: int) -> int:
    if not 1 <= sfi <= 30:
        raise ValueError(f"a short EF identifier is 1..30, got {sfi}")
    return sfi


def parse_path(text: str) -> list[int]:
    """'3F00/5000/5001' or '3F0050005001' → [0x3F00, 0x5000, 0x5001]."""
    cleaned = text.replace("/", "").replace(" ", "").replace(":", "")
    if not cleaned or len(cleaned) % 4:
        raise ValueError(f"a path is a sequence of 4-hex-digit file identifiers, got {text!r}")
    try:
        return [int(cleaned[i : i + 4], 16) for i in range(0, len(cleaned), 4)]
    except ValueError:
        raise ValueError(f"not a hex path: {text!r}") from None


def format_path(path: Sequence[int]) -> str:
    return "/".join(f"{fid:04X}" for fid in path)


@dataclass(frozen=True)
class FileRef:
    """Where a command finds its EF: a path (absolute when it starts with 3F00, else from the current
    DF), or a DF path followed by a short EF identifier of that DF."""

    path: tuple[int, ...] = ()
    sfi: int | None = None

    @classmethod
    def parse(cls, text: str) -> FileRef:
        """'3F00/5000/5001', '5000/5001' (from the current DF), 'sfi:1' (current DF),
        '3F00/5000/sfi:3' (SFI 3 of DF 5000)."""
        parts = [p for p in text.strip().split("/") if p]
        if not parts:
            raise ValueError("an empty file reference")
        sfi = None
        last = parts[-1].lower()
        if last.startswith("sfi:") or last.startswith("sfi="):
            try:
                sfi = _check_sfi(int(last[4:], 0))
            except ValueError as exc:
                raise ValueError(f"{parts[-1]!r}: {exc}") from None
            parts = parts[:-1]
        path = tuple(parse_path("/".join(parts))) if parts else ()
        return cls(path, sfi)

    def __str__(self) -> str:
        text = format_path(self.path)
        if self.sfi is not None:
            text += ("/" if text else "") + f"sfi:{self.sfi}"
        return text


@dataclass(frozen=True)
class TreeNode:
    """One file of a walked tree: its absolute path, its FCP and (for a DF) its children."""

    path: tuple[int, ...]
    fcp: FileControlParameters | None
    children: list[TreeNode] = field(default_factory=list)
    error: StatusError | None = None  # when the file could not be selected


class IsoFileSystem:
    """ISO/IEC 7816-4 commands on the currently selected application (or card)."""

    def __init__(self, transport: Transport, cla: int = 0x00) -> None:
        self.transport = transport
        self.cla = cla

    def _send(self, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None, *,
              expected: Iterable[int] = (SW_OK,)) -> ResponseAPDU:
        return self.transport.send(CommandAPDU(self.cla, ins, p1, p2, data, le), expected)

    # ---------------------------------------------------------------- SELECT (7.1.1)
    def select_application(self, aid: bytes) -> None:
        """SELECT by AID of an applet (the card's application, not a DF inside it)."""
        self.transport.send(CommandAPDU(0x00, INS_SELECT, 0x04, 0x00, aid))

    def select(self, by: SelectBy, data: bytes = b"", returns: SelectReturn = SelectReturn.FCP,
               occurrence: Occurrence = Occurrence.FIRST) -> FileControlParameters | None:
        """Selects a file; 6283/6285 (deactivated / terminated file selected) count as success and
        show in the returned life cycle."""
        returns = SelectReturn(returns)
        le = None if returns is SelectReturn.NONE else 256
        response = self._send(INS_SELECT, by, returns | occurrence, data, le,
                              expected=(SW_OK, SW_SELECTED_DEACTIVATED, SW_SELECTED_TERMINATED))
        if returns is SelectReturn.NONE or not response.data:
            return None
        return FileControlParameters.decode(response.data)

    def select_mf(self, returns: SelectReturn = SelectReturn.FCP) -> FileControlParameters | None:
        return self.select(SelectBy.FID, _fid_bytes(FID_MF), returns)

    def select_fid(self, fid: int, returns: SelectReturn = SelectReturn.FCP) -> FileControlParameters | None:
        """P1 00: the MF, the current DF, a child, the parent or a sibling DF's child (library rules)."""
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
        """Path without the MF's 3F00 when from the MF (ISO 7816-4 7.1.1 P1 08), from the current DF
        otherwise (P1 09). An empty absolute path, or just 3F00, selects the MF."""
        ids = list(path)
        if from_mf and ids and ids[0] == FID_MF:
            ids = ids[1:]
        if not ids:
            if from_mf:
                return self.select_mf(returns)
            raise ValueError("an empty relative path names no file")
        by = SelectBy.PATH_FROM_MF if from_mf else SelectBy.PATH_FROM_CURRENT_DF
        return self.select(by, b"".join(_fid_bytes(f) for f in ids), returns)

    def select_ref(self, ref: FileRef, returns: SelectReturn = SelectReturn.FCP) -> int | None:
        """Selects what ``ref`` names. Returns the SFI the next command must carry (the DF is then
        current), or None when the path selected the EF itself."""
        if ref.path:
            self.select_path(ref.path, from_mf=ref.path[0] == FID_MF, returns=returns)
        return ref.sfi

    # ---------------------------------------------------------------- binary (7.2)
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
        """Reads ``length`` bytes (everything to the end of the file when None), in as many commands
        as needed; the first addresses the EF by SFI when given, the rest the then current EF."""
        if length is not None and length < 1:
            raise ValueError(f"read at least one byte, not {length}")
        out = b""
        while length is None or len(out) < length:
            want = MAX_CHUNK if length is None else min(MAX_CHUNK, length - len(out))
            p1, p2 = self._binary_p1p2(offset + len(out), sfi if not out else None)
            # Reading to the end: a next chunk that starts exactly at the end is refused with 6B00.
            expected = (SW_OK, SW_WRONG_P1P2_OFFSET) if length is None and out else (SW_OK,)
            response = self._send(INS_READ_BINARY, p1, p2, le=want, expected=expected)
            if response.sw == SW_WRONG_P1P2_OFFSET:
                break
            out += response.data
            if not response.data or (length is None and len(response.data) < want):
                break
        return out

    def _write_binary(self, ins: int, offset: int, data: bytes, sfi: int | None) -> None:
        chunks = [data[i : i + MAX_DATA] for i in range(0, len(data), MAX_DATA)] or [b""]
        written = 0
        for chunk in chunks:  # an empty write is sent as is: the card answers 6700
            p1, p2 = self._binary_p1p2(offset + written, sfi if written == 0 else None)
            self._send(ins, p1, p2, chunk)
            written += len(chunk)

    def update_binary(self, offset: int, data: bytes, sfi: int | None = None) -> None:
        """UPDATE BINARY: the bytes replace the file's at ``offset``."""
        self._write_binary(INS_UPDATE_BINARY, offset, data, sfi)

    def write_binary(self, offset: int, data: bytes, sfi: int | None = None) -> None:
        """WRITE BINARY: ORed into the stored bytes (the library's data coding byte 41)."""
        self._write_binary(INS_WRITE_BINARY, offset, data, sfi)

    def erase_binary(self, offset: int = 0, end: int | None = None, sfi: int | None = None) -> None:
        """ERASE BINARY: sets bytes from ``offset`` up to ``end`` (exclusive; None: the file's end) to 00."""
        p1, p2 = self._binary_p1p2(offset, sfi)
        self._send(INS_ERASE_BINARY, p1, p2, _fid_bytes(end) if end is not None else b"")

    # ---------------------------------------------------------------- records (7.3)
    @staticmethod
    def _record_p2(sfi: int | None, mode: int) -> int:
        return ((_check_sfi(sfi) << 3) if sfi is not None else 0) | mode

    @staticmethod
    def _record_p1(number: int, mode: RecordMode) -> int:
        if mode in (RecordMode.FIRST, RecordMode.LAST, RecordMode.NEXT, RecordMode.PREVIOUS):
            if number:
                raise ValueError(f"record mode {mode.name} takes no record number (P1 00), got {number}")
            return 0
        if not 0 <= number <= 0xFE:
            raise ValueError(f"a record number is 1..254 (0: the current record), got {number}")
        return number

    def read_record(self, number: int = 0, sfi: int | None = None, mode: RecordMode = RecordMode.NUMBER) -> bytes:
        """READ RECORD: record ``number`` (0: the current one), or with ``mode`` the first / last /
        next / previous record (these move the record pointer)."""
        if mode in (RecordMode.FROM_NUMBER, RecordMode.TO_NUMBER):
            raise ValueError("use read_records_from() for several records")
        p1 = self._record_p1(number, mode)
        return self._send(INS_READ_RECORD, p1, self._record_p2(sfi, mode), le=256).data

    def read_first(self, sfi: int | None = None) -> bytes:
        return self.read_record(0, sfi, RecordMode.FIRST)

    def read_last(self, sfi: int | None = None) -> bytes:
        return self.read_record(0, sfi, RecordMode.LAST)

    def read_next(self, sfi: int | None = None) -> bytes:
        return self.read_record(0, sfi, RecordMode.NEXT)

    def read_previous(self, sfi: int | None = None) -> bytes:
        return self.read_record(0, sfi, RecordMode.PREVIOUS)

    def read_records_from(self, number: int = 1, sfi: int | None = None, reverse: bool = False,
                          le: int = 256) -> list[bytes]:
        """READ RECORDS (P2 101: record ``number`` up to the last; 110 with ``reverse``: the last down
        to ``number``): as many whole records as fit ``le`` bytes, unwrapped from their tags 04."""
        mode = RecordMode.TO_NUMBER if reverse else RecordMode.FROM_NUMBER
        p1 = self._record_p1(number, mode)
        response = self._send(INS_READ_RECORD, p1, self._record_p2(sfi, mode), le=le,
                              expected=(SW_OK, SW_END_OF_FILE))
        return [value for tag, value in parse_tlv(response.data) if tag == TAG_RECORD]

    def read_all_records(self, sfi: int | None = None) -> list[bytes]:
        """Every record, 1 upwards (for a cyclic EF: newest first), until 'record not found'."""
        records: list[bytes] = []
        for number in range(1, 0xFF):
            response = self._send(INS_READ_RECORD, number, self._record_p2(sfi if not records else None, 0x04),
                                  le=256, expected=(SW_OK, SW_RECORD_NOT_FOUND))
            if response.sw == SW_RECORD_NOT_FOUND:
                break
            records.append(response.data)
        return records

    def update_record(self, number: int, data: bytes, sfi: int | None = None,
                      mode: RecordMode = RecordMode.NUMBER) -> None:
        """UPDATE RECORD: replaces a record (a variable record may change its length). On a cyclic
        EF, mode PREVIOUS writes a new record 1 over the oldest, like APPEND RECORD."""
        self._send(INS_UPDATE_RECORD, self._record_p1(number, mode), self._record_p2(sfi, mode), data)

    def write_record(self, number: int, data: bytes, sfi: int | None = None,
                     mode: RecordMode = RecordMode.NUMBER) -> None:
        """WRITE RECORD: ORed into the record (the data must be as long as the record)."""
        self._send(INS_WRITE_RECORD, self._record_p1(number, mode), self._record_p2(sfi, mode), data)

    def append_record(self, data: bytes, sfi: int | None = None) -> None:
        self._send(INS_APPEND_RECORD, 0x00, self._record_p2(sfi, 0x00), data)

    def search_record(self, pattern: bytes, start: int = 1, sfi: int | None = None,
                      backward: bool = False) -> list[int]:
        """Simple SEARCH RECORD (P2 100 forward from record ``start``, 101 backward; start 0: from the
        first / last record): the numbers of the records containing ``pattern``. An empty list when
        none does (the card's 6A83, which it also gives when ``start`` is not a record)."""
        if not 0 <= start <= 0xFE:
            raise ValueError(f"a record number is 1..254 (0: first or last), got {start}")
        response = self._send(INS_SEARCH_RECORD, start, self._record_p2(sfi, 0x05 if backward else 0x04),
                              pattern, le=256, expected=(SW_OK, SW_RECORD_NOT_FOUND))
        return list(response.data) if response.sw == SW_OK else []

    # ---------------------------------------------------------------- management (7816-9)
    def create_file(self, fcp: bytes) -> None:
        """CREATE FILE in the current DF with an FCP template (see encode_fcp); the file becomes current."""
        self._send(INS_CREATE_FILE, 0x00, 0x00, fcp)

    def _target(self, ins: int, fid: int | None) -> None:
        self._send(ins, 0x00, 0x00, _fid_bytes(fid) if fid is not None else b"")

    def delete_file(self, fid: int | None = None) -> None:
        """DELETE FILE of the child ``fid`` of the current DF, or of the current file when None."""
        self._target(INS_DELETE_FILE, fid)

    def activate_file(self, fid: int | None = None) -> None:
        self._target(INS_ACTIVATE_FILE, fid)

    def deactivate_file(self, fid: int | None = None) -> None:
        self._target(INS_DEACTIVATE_FILE, fid)

    def terminate_df(self, fid: int | None = None) -> None:
        self._target(INS_TERMINATE_DF, fid)

    def terminate_ef(self, fid: int | None = None) -> None:
        self._target(INS_TERMINATE_EF, fid)

    # ---------------------------------------------------------------- PIN (7.5.6, 7.5.7)
    def verify(self, pin: bytes, reference: int = 0x01, expected: Iterable[int] = (SW_OK,)) -> ResponseAPDU:
        """VERIFY; the trace masks the PIN. The ISO applet's PIN is reference 01."""
        return self._send(INS_VERIFY, 0x00, reference, pin, expected=expected)

    def pin_status(self, reference: int = 0x01) -> int:
        """VERIFY without data: 9000 verified, 63Cx not verified with x tries left, 6983 blocked."""
        return self.transport.transmit(CommandAPDU(self.cla, INS_VERIFY, 0x00, reference)).sw

    def change_pin(self, new_pin: bytes, reference: int = 0x01, old_pin: bytes | None = None) -> None:
        """CHANGE REFERENCE DATA: P1 01 with the new PIN only (the PIN verified before), or P1 00 with
        the current PIN followed by the new one (ISO/IEC 7816-4 7.5.7)."""
        if old_pin is None:
            self._send(INS_CHANGE_REFERENCE_DATA, 0x01, reference, new_pin)
        else:
            self._send(INS_CHANGE_REFERENCE_DATA, 0x00, reference, old_pin + new_pin)

    def reset_retry_counter(self, puk: bytes, new_pin: bytes | None = None, reference: int = 0x01) -> None:
        """RESET RETRY COUNTER (7.5.10): P1 00 the PUK then a new PIN, P1 01 the PUK alone."""
        if new_pin is None:
            self._send(INS_RESET_RETRY_COUNTER, 0x01, reference, puk)
        else:
            self._send(INS_RESET_RETRY_COUNTER, 0x00, reference, puk + new_pin)

    def get_challenge(self, length: int = 8) -> bytes:
        """GET CHALLENGE (7.5.3): `length` (1..256) random bytes."""
        if not 1 <= length <= 256:
            raise ValueError(f"a challenge has 1..256 bytes, got {length}")
        return self._send(INS_GET_CHALLENGE, 0x00, 0x00, le=length).data

    # ---------------------------------------------------------------- the tree
    def tree(self, path: Sequence[int] = (FID_MF,)) -> TreeNode:
        """Walks the tree below ``path`` (absolute) through the children each DF's FCP lists (tag 85
        of cardsuite.isocmd), selecting every file by its path from the MF."""
        absolute = tuple(path) if path and path[0] == FID_MF else (FID_MF, *path)
        return self._walk(absolute)

    def _walk(self, path: tuple[int, ...]) -> TreeNode:
        try:
            fcp = self.select_path(path)
        except StatusError as exc:
            return TreeNode(path, None, error=exc)
        node = TreeNode(path, fcp)
        if fcp is not None and fcp.is_df:
            for child in fcp.children or ():
                node.children.append(self._walk((*path, child)))
        return node
