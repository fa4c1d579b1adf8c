"""Shared pieces of the file-system tests: the ISO applet's AIDs and tree, raw APDU helpers, scratch
DFs (fresh files for a test on a shared card), and a Python model of cardsuite.isocmd's command
processor that predicts the status word and data of every file command (see test_fs_model.py).

The model follows applets/isocmd/README.md: checks in the order P1-P2 → file → structure → life
cycle → access → offset/record → length → room, the record pointer rules of READ RECORD modes
000..011, the cyclic ring (record 1 the newest) and variable records packed with a length byte.
State changes only when a command completes (ISO/IEC 7816-4 7.3.1: "if the process is completed,
then the identified EF becomes current and the record pointer is reset"): an error, 6Cxx included,
leaves the current EF and the record pointer as they were; a warning (6282) completes the command.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from cardsuite.apdu import CommandAPDU, StatusError
from cardsuite.fs.client import IsoFileSystem, SelectReturn, Structure, encode_fcp
from cardsuite.transport.base import Transport

from support import ISO_AID

PIN = b"1234"  # the ISO applet's PIN (its install parameters), not the wallet's
ALWAYS5 = bytes(5)

OK = 0x9000


def xchg(card: Transport, cla: int, ins: int, p1: int = 0, p2: int = 0, data: bytes = b"",  # noqa: PLR0917
         le: int | None = None) -> tuple[bytes, int]:
    """One raw exchange (no 61xx/6Cxx handling): (response data, status word)."""
    response = card.exchange(CommandAPDU(cla, ins, p1, p2, data, le))
    return response.data, response.sw


def raw(card: Transport, text: str) -> tuple[bytes, int]:
    """A raw exchange from hex, e.g. raw(card, '00 A4 00 04 02 5000 00')."""
    response = card.exchange(CommandAPDU.from_hex(text))
    return response.data, response.sw


def sw_of(call) -> int:
    """The status word of a client call that must fail (the client raises StatusError on it)."""
    with pytest.raises(StatusError) as caught:
        call()
    return caught.value.sw


def swof(card: Transport, text: str) -> int:
    return raw(card, text)[1]


def open_iso(card: Transport) -> IsoFileSystem:
    fs = IsoFileSystem(card)
    fs.select_application(ISO_AID)
    return fs


_fids = itertools.count(0x7100)


def next_fid() -> int:
    """A DF identifier no other test on this card used (scratch DFs are deleted, names never reused)."""
    return next(_fids)


@contextmanager
def scratch_df(card: Transport, *efs: bytes, df_access: bytes = ALWAYS5) -> Iterator[tuple[IsoFileSystem, int]]:
    """A fresh DF under the MF holding the EFs of the given FCP templates, deleted afterwards.
    Leaves the PIN verified (creating in the MF needs it) and the new DF current."""
    fs = open_iso(card)
    fs.verify(PIN)
    fid = next_fid()
    fs.select_mf()
    fs.create_file(encode_fcp(fid, Structure.DF, access=df_access))
    for fcp in efs:
        fs.select_path([0x3F00, fid], returns=SelectReturn.NONE)
        fs.create_file(fcp)
    fs.select_path([0x3F00, fid])
    try:
        yield fs, fid
    finally:
        fs.select_application(ISO_AID)
        fs.verify(PIN)
        fs.select_mf()
        fs.delete_file(fid)


# ---------------------------------------------------------------- the model


@dataclass
class EF:
    fid: int
    sfi: int
    structure: Structure
    size: int  # transparent: bytes; fixed/cyclic: record size × records; variable: the budget
    record_size: int = 0  # fixed / cyclic: the size; variable: the largest
    capacity: int = 0  # fixed / cyclic: records
    data: bytearray = field(default_factory=bytearray)
    records: list[bytes] = field(default_factory=list)  # record 1 first (cyclic: the newest)

    def __post_init__(self) -> None:
        if self.structure is Structure.TRANSPARENT:
            self.data = bytearray(self.size)

    def fcp(self) -> bytes:
        if self.structure is Structure.TRANSPARENT:
            return encode_fcp(self.fid, self.structure, size=self.size, sfi=self.sfi, access=ALWAYS5)
        if self.structure is Structure.LINEAR_VARIABLE:
            return encode_fcp(self.fid, self.structure, size=self.size, record_size=self.record_size,
                              sfi=self.sfi, access=ALWAYS5)
        return encode_fcp(self.fid, self.structure, record_size=self.record_size, records=self.capacity,
                          sfi=self.sfi, access=ALWAYS5)

    @property
    def used(self) -> int:
        return sum(len(r) + 1 for r in self.records)


class ModelError(Exception):
    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


def _fail(sw: int) -> None:
    raise ModelError(sw)


@dataclass
class FsModel:
    """The scratch DF of test_fs_model.py, all conditions 'always', all files activated."""

    df_fid: int
    efs: list[EF]
    current: EF | None = None
    pointer: int = 0

    def _by_sfi(self, sfi: int) -> EF:
        for ef in self.efs:
            if ef.sfi == sfi:
                return ef
        raise ModelError(0x6A82)

    def _named_ef(self, sfi: int) -> tuple[EF, int]:
        """The EF a command names and the record pointer it starts from. Named by SFI, the EF becomes
        current with its pointer reset once the command completes, even if it was current already."""
        if sfi:
            return self._by_sfi(sfi), 0
        if self.current is None:
            _fail(0x6986)
        return self.current, self.pointer  # type: ignore[return-value]

    def _complete(self, ef: EF, pointer: int) -> None:
        """What a completed command leaves: ef current, the record pointer on `pointer` (0: none)."""
        self.current, self.pointer = ef, pointer

    def run(self, command: CommandAPDU) -> tuple[bytes, int]:
        """The card's answer to one command: (data, status word)."""
        try:
            return getattr(self, f"_ins_{command.ins:02X}")(command)
        except ModelError as exc:
            return b"", exc.sw

    # -- SELECT: P1 00 (DF itself, P2 0C) and P1 02 (EF; P2 0C, or 00 / 04 for its FCI / FCP)
    def _ins_A4(self, c: CommandAPDU) -> tuple[bytes, int]:
        fid = int.from_bytes(c.data, "big")
        if c.p1 == 0x00 and fid == self.df_fid:
            self.current, self.pointer = None, 0
            return b"", OK
        for ef in self.efs:
            if ef.fid == fid:
                response = b"" if c.p2 == 0x0C or not c.le else self.fcp_of(ef, 0x6F if c.p2 == 0x00 else 0x62)
                if len(response) > (c.le or 0):
                    return b"", 0x6C00 | len(response)  # not selected: the re-sent SELECT finds the same file
                self.current, self.pointer = ef, 0
                return response, OK
        return b"", 0x6A82

    @staticmethod
    def fcp_of(ef: EF, tag: int = 0x62) -> bytes:
        """What SELECT returns for one of the model's EFs (applets/isofs/README.md, FCP contents): every
        condition 'always', so the compact attributes (8C) give all seven commands of the AM byte 00."""
        if ef.structure is Structure.TRANSPARENT:
            descriptor = bytes.fromhex("82020141")
        else:
            descriptor = bytes((0x82, 5, ef.structure.descriptor, 0x41, 0, ef.record_size, len(ef.records)))
        body = (bytes((0x80, 2)) + ef.size.to_bytes(2, "big") + descriptor + bytes((0x83, 2))
                + ef.fid.to_bytes(2, "big") + bytes((0x88, 1, ef.sfi << 3, 0x8A, 1, 0x05, 0x86, 5)) + ALWAYS5
                + bytes((0x8C, 8, 0x7F)) + bytes(7))
        return bytes((tag, len(body))) + body

    # -- binary
    def _binary(self, c: CommandAPDU) -> tuple[EF, int, int]:
        """The transparent EF, the offset and the record pointer to leave on completion."""
        if c.p1 & 0x80 and c.p1 & 0x60:
            _fail(0x6A86)
        ef, pointer = self._named_ef(c.p1 & 0x1F if c.p1 & 0x80 else 0)
        if ef.structure is not Structure.TRANSPARENT:
            _fail(0x6981)
        offset = c.p2 if c.p1 & 0x80 else (c.p1 << 8) | c.p2
        return ef, offset, pointer

    @staticmethod
    def _available(ef: EF, offset: int) -> int:
        if offset >= ef.size:
            _fail(0x6B00)
        return ef.size - offset

    def _ins_B0(self, c: CommandAPDU) -> tuple[bytes, int]:
        ef, offset, pointer = self._binary(c)
        n = self._available(ef, offset)
        ne = c.le or 0
        if ne == 0:
            return b"", 0x6C00 | (0 if n > 255 else n)
        n = min(n, ne)
        self._complete(ef, pointer)
        return bytes(ef.data[offset : offset + n]), OK if ne in (n, 256) else 0x6282

    def _ins_D6(self, c: CommandAPDU, write: bool = False) -> tuple[bytes, int]:
        ef, offset, pointer = self._binary(c)
        if not c.data:
            _fail(0x6700)
        if len(c.data) > self._available(ef, offset):
            _fail(0x6700)
        data = c.data
        if write:
            data = bytes(a | b for a, b in zip(data, ef.data[offset:], strict=False))
        ef.data[offset : offset + len(data)] = data
        self._complete(ef, pointer)
        return b"", OK

    def _ins_D0(self, c: CommandAPDU) -> tuple[bytes, int]:
        return self._ins_D6(c, write=True)

    # -- records
    def _record_file(self, c: CommandAPDU) -> tuple[EF, int]:
        """The record EF P2 names and the record pointer the command starts from."""
        ef, pointer = self._named_ef((c.p2 >> 3) & 0x1F)
        if not ef.structure.is_record:
            _fail(0x6981)
        return ef, pointer

    @staticmethod
    def _check(ef: EF, number: int) -> int:
        if number == 0 or number > len(ef.records):
            _fail(0x6A83)
        return number

    def _record_number(self, ef: EF, p1: int, mode: int, pointer: int) -> int:
        """The record P1 and the mode name, from the pointer the command starts from; moves nothing."""
        count, n = len(ef.records), pointer
        if mode == 4:
            return self._check(ef, p1 or n)
        if mode > 3 or p1:
            _fail(0x6A86)
        cyclic = ef.structure is Structure.CYCLIC
        if mode == 0:
            n = 1
        elif mode == 1:
            n = count
        elif mode == 2:
            n = 1 if n == count and cyclic else n + 1
        else:
            n = count if n <= 1 and (cyclic or n == 0) else n - 1
        return self._check(ef, n)

    @staticmethod
    def _moved(mode: int, n: int, pointer: int) -> int:
        """The pointer after a completed command: on the record for first/last/next/previous."""
        return n if mode < 4 else pointer

    def _ins_B2(self, c: CommandAPDU) -> tuple[bytes, int]:
        ef, pointer = self._record_file(c)
        mode = c.p2 & 0x07
        ne = c.le or 0
        if mode in (5, 6):
            if ne == 0:
                _fail(0x6700)
            first = self._record_number(ef, c.p1, 4, pointer)
            numbers = list(range(first, len(ef.records) + 1))
            if mode == 6:
                numbers.reverse()
            out = b""
            complete = True
            for number in numbers:
                record = ef.records[number - 1]
                item = bytes((0x04,)) + (b"\x81" if len(record) > 127 else b"") + bytes((len(record),)) + record
                if len(out) + len(item) > min(ne, 260):
                    complete = False
                    break
                out += item
            self._complete(ef, pointer)
            return out, OK if complete or len(out) == ne or ne == 256 else 0x6282
        n = self._record_number(ef, c.p1, mode, pointer)
        record = ef.records[n - 1]
        if ne < len(record):
            return b"", 0x6C00 | len(record)  # the re-sent command must find the same record
        self._complete(ef, self._moved(mode, n, pointer))
        return record, OK if len(record) == ne or ne == 256 else 0x6282

    def _length_ok(self, ef: EF, length: int) -> None:
        if ef.structure is Structure.LINEAR_VARIABLE:
            if not 0 < length <= ef.record_size:
                _fail(0x6700)
        elif length != ef.record_size:
            _fail(0x6700)

    def _append(self, ef: EF, data: bytes) -> None:
        if ef.structure is Structure.LINEAR_FIXED:
            if len(ef.records) == ef.capacity:
                _fail(0x6A84)
            self._length_ok(ef, len(data))
            ef.records.append(data)
        elif ef.structure is Structure.LINEAR_VARIABLE:
            self._length_ok(ef, len(data))
            if len(ef.records) == 254 or len(data) >= ef.size - ef.used:
                _fail(0x6A84)
            ef.records.append(data)
        else:
            self._length_ok(ef, len(data))
            ef.records.insert(0, data)
            del ef.records[ef.capacity :]

    def _ins_DC(self, c: CommandAPDU, write: bool = False) -> tuple[bytes, int]:
        ef, pointer = self._record_file(c)
        mode = c.p2 & 0x07
        if not write and mode == 3 and c.p1 == 0 and ef.structure is Structure.CYCLIC:
            if not c.data:
                _fail(0x6700)
            self._append(ef, c.data)
            self._complete(ef, 1)
            return b"", OK
        n = self._record_number(ef, c.p1, mode, pointer)
        if not c.data:
            _fail(0x6700)
        data = c.data
        old = ef.records[n - 1]
        if write:
            if len(data) != len(old):
                _fail(0x6700)
            data = bytes(a | b for a, b in zip(data, old, strict=True))
        self._length_ok(ef, len(data))
        if ef.structure is Structure.LINEAR_VARIABLE and len(data) - len(old) > ef.size - ef.used:
            _fail(0x6A84)
        ef.records[n - 1] = data
        self._complete(ef, self._moved(mode, n, pointer))
        return b"", OK

    def _ins_D2(self, c: CommandAPDU) -> tuple[bytes, int]:
        return self._ins_DC(c, write=True)

    def _ins_E2(self, c: CommandAPDU) -> tuple[bytes, int]:
        if c.p1 or c.p2 & 0x07:
            _fail(0x6A86)
        ef, _ = self._record_file(c)
        if not c.data:
            _fail(0x6700)
        self._append(ef, c.data)
        self._complete(ef, 1 if ef.structure is Structure.CYCLIC else len(ef.records))
        return b"", OK

    def _ins_A2(self, c: CommandAPDU) -> tuple[bytes, int]:
        mode = c.p2 & 0x07
        if mode not in (4, 5):
            _fail(0x6A86)
        ef, _ = self._record_file(c)
        if not c.data:
            _fail(0x6700)
        count = len(ef.records)
        forward = mode == 4
        start = self._check(ef, c.p1) if c.p1 else (1 if forward else count)
        numbers = range(start, count + 1) if forward else range(start, 0, -1)
        found = bytes(n for n in numbers if c.data in ef.records[n - 1])
        if not found:
            _fail(0x6A83)
        ne = c.le or 0
        if ne < len(found):
            return b"", 0x6C00 | len(found)
        self._complete(ef, found[0])
        return found, OK
