"""READ RECORD(S), UPDATE / WRITE / APPEND / SEARCH RECORD (ISO/IEC 7816-4 7.3) on linear fixed,
linear variable and cyclic EFs, each test on fresh files in a scratch DF."""

from __future__ import annotations

import pytest
from cardsuite.fs.client import RecordMode, Structure, encode_fcp
from support.fsmodel import ALWAYS5, scratch_df, sw_of, swof, xchg

pytestmark = pytest.mark.e2e

FIXED = encode_fcp(0x0C01, Structure.LINEAR_FIXED, record_size=4, records=3, sfi=1, access=ALWAYS5)
VARIABLE = encode_fcp(0x0C02, Structure.LINEAR_VARIABLE, size=20, record_size=10, sfi=2, access=ALWAYS5)
CYCLIC = encode_fcp(0x0C03, Structure.CYCLIC, record_size=2, records=3, sfi=3, access=ALWAYS5)
BINARY = encode_fcp(0x0C04, Structure.TRANSPARENT, size=8, sfi=4, access=ALWAYS5)
F, V, C, T = 1, 2, 3, 4  # SFIs


@pytest.fixture
def files(card):
    with scratch_df(card, FIXED, VARIABLE, CYCLIC, BINARY) as (fs, _):
        yield fs


def test_fcp_counts_the_records_present(files) -> None:
    fcp = files.select_ef(0x0C01)
    assert (fcp.structure, fcp.record_size, fcp.record_count, fcp.size) == (Structure.LINEAR_FIXED, 4, 0, 12)
    files.append_record(b"abcd")
    assert files.select_ef(0x0C01).record_count == 1
    fcp = files.select_ef(0x0C02)
    assert (fcp.structure, fcp.record_size, fcp.size) == (Structure.LINEAR_VARIABLE, 10, 20)


def test_linear_fixed_append_read_update_write(card, files) -> None:
    assert sw_of(lambda: files.read_record(1, sfi=F)) == 0x6A83
    for i in range(3):
        files.append_record(bytes([i + 1]) * 4, sfi=F)
    assert files.read_all_records(sfi=F) == [b"\x01" * 4, b"\x02" * 4, b"\x03" * 4]
    assert sw_of(lambda: files.append_record(b"\x04" * 4, sfi=F)) == 0x6A84  # full
    assert sw_of(lambda: files.append_record(b"\x04", sfi=F)) == 0x6A84  # full before wrong length
    files.update_record(2, b"wxyz", sfi=F)
    files.write_record(3, bytes.fromhex("F0000000"), sfi=F)
    assert files.read_records_from(1) == [b"\x01" * 4, b"wxyz", bytes.fromhex("F3030303")]
    assert sw_of(lambda: files.update_record(2, b"abc")) == 0x6700
    assert sw_of(lambda: files.update_record(4, b"abcd")) == 0x6A83  # record before length
    assert sw_of(lambda: files.write_record(1, b"abcde")) == 0x6700
    assert swof(card, "00 DC 02 0C") == 0x6700  # no data
    assert swof(card, "00 E2 00 08") == 0x6700


def test_read_record_exact_le_and_warnings(card, files) -> None:
    files.append_record(b"ABCD", sfi=F)
    assert xchg(card, 0x00, 0xB2, 0x00, 0x04, le=256) == (b"ABCD", 0x9000)  # P1 00: where APPEND left the pointer
    assert xchg(card, 0x00, 0xB2, 0x01, 0x0C, le=4) == (b"ABCD", 0x9000)
    assert xchg(card, 0x00, 0xB2, 0x01, 0x0C, le=3) == (b"", 0x6C04)
    assert xchg(card, 0x00, 0xB2, 0x01, 0x0C) == (b"", 0x6C04)  # Le absent
    assert xchg(card, 0x00, 0xB2, 0x01, 0x0C, le=9) == (b"ABCD", 0x6282)  # Ne beyond the record
    assert xchg(card, 0x00, 0xB2, 0x01, 0x0C, le=256) == (b"ABCD", 0x9000)
    assert xchg(card, 0x00, 0xB2, 0x02, 0x0C, le=256)[1] == 0x6A83
    # P1 00 by SFI: naming the EF by its SFI resets the pointer, even of the current EF (7816-4 7.3.1)
    assert xchg(card, 0x00, 0xB2, 0x00, 0x0C, le=256) == (b"", 0x6A83)
    files.select_ef(0x0C01)
    assert xchg(card, 0x00, 0xB2, 0x00, 0x04, le=256)[1] == 0x6A83  # a fresh selection has no current record


def test_record_pointer_modes_on_a_linear_file(card, files) -> None:
    for i in range(3):
        files.append_record(bytes([i + 1]) * 4, sfi=F)  # the pointer is on the appended record
    assert files.read_record(0) == b"\x03" * 4
    assert files.read_first() == b"\x01" * 4
    assert files.read_next() == b"\x02" * 4
    assert files.read_record(0) == b"\x02" * 4  # current record, pointer unchanged
    assert files.read_next() == b"\x03" * 4
    assert sw_of(files.read_next) == 0x6A83  # no wrap in a linear file
    assert files.read_record(0) == b"\x03" * 4  # a failed move keeps the pointer
    assert files.read_last() == b"\x03" * 4
    assert files.read_previous() == b"\x02" * 4
    assert files.read_previous() == b"\x01" * 4
    assert sw_of(files.read_previous) == 0x6A83
    files.select_ef(0x0C01)  # selection forgets the pointer: next = first, previous = last
    assert files.read_next() == b"\x01" * 4
    files.select_ef(0x0C01)
    assert files.read_previous() == b"\x03" * 4
    files.update_record(0, b"nnnn", mode=RecordMode.FIRST)  # update moves it too
    assert files.read_record(0) == b"nnnn"
    assert files.read_all_records(sfi=F) == [b"nnnn", b"\x02" * 4, b"\x03" * 4]
    assert swof(card, "00 B2 01 08 00") == 0x6A86  # P1 must be 00 with first
    assert swof(card, "00 B2 00 0F 00") == 0x6A86  # mode 111
    assert swof(card, "00 DC 00 0D 04 00000000") == 0x6A86  # READ RECORDS mode on UPDATE


def test_cyclic_ring_through_several_wraparounds(card, files) -> None:
    appended = []
    for i in range(11):
        files.append_record(bytes([i, i]), sfi=C)
        appended.append(bytes([i, i]))
        assert files.read_record(0) == bytes([i, i])  # the pointer is on record 1
        assert files.read_all_records(sfi=C) == appended[::-1][:3]  # record 1 newest, three at most
    assert files.select_ef(0x0C03).record_count == 3
    # next and previous wrap around the ring
    assert files.read_first() == b"\x0A\x0A"
    assert files.read_previous() == b"\x08\x08"
    assert files.read_next() == b"\x0A\x0A"
    assert files.read_next() == b"\x09\x09"
    assert files.read_next() == b"\x08\x08"
    assert files.read_next() == b"\x0A\x0A"
    # UPDATE RECORD previous writes a new record 1 over the oldest, like APPEND
    files.update_record(0, b"\xEE\xEE", mode=RecordMode.PREVIOUS)
    assert files.read_record(0) == b"\xEE\xEE"
    assert files.read_all_records(sfi=C) == [b"\xEE\xEE", b"\x0A\x0A", b"\x09\x09"]
    files.update_record(2, b"\x22\x22")
    assert files.read_records_from(1) == [b"\xEE\xEE", b"\x22\x22", b"\x09\x09"]
    assert sw_of(lambda: files.append_record(b"\x01\x02\x03")) == 0x6700  # never full, only length


def test_variable_records_fill_the_budget_exactly(card, files) -> None:
    # budget 20: each record costs its length + 1
    files.append_record(b"1234567890", sfi=V)  # 11
    files.append_record(b"abcde", sfi=V)  # 6 → 17 used
    assert sw_of(lambda: files.append_record(b"xyz")) == 0x6A84  # would need 4
    files.append_record(b"xy")  # 3 → 20 used: full exactly
    assert sw_of(lambda: files.append_record(b"z")) == 0x6A84
    assert files.read_all_records() == [b"1234567890", b"abcde", b"xy"]
    assert sw_of(lambda: files.append_record(b"12345678901")) == 0x6700  # length before room
    assert swof(card, "00 E2 00 10") == 0x6700
    # update may change a record's length: the following records move
    files.update_record(2, b"ab")
    assert files.read_all_records() == [b"1234567890", b"ab", b"xy"]
    files.update_record(1, b"1")
    assert files.read_all_records() == [b"1", b"ab", b"xy"]
    files.update_record(3, b"0123456789")  # 11 + 3 + 2 = 16 used
    assert sw_of(lambda: files.update_record(2, b"abcdefg")) == 0x6A84  # +5 > 4 free
    files.update_record(2, b"abcdef")  # +4: exactly full
    assert files.read_all_records() == [b"1", b"abcdef", b"0123456789"]
    assert sw_of(lambda: files.write_record(2, b"abc")) == 0x6700  # WRITE keeps the length
    files.write_record(2, bytes.fromhex("808080808001"))
    assert files.read_record(2) == bytes.fromhex("E1E2E3E4E567")  # "abcdef" ORed
    assert files.read_records_from(2, reverse=True) == [b"0123456789", bytes.fromhex("E1E2E3E4E567")]


def test_read_records_fits_whole_records_into_ne(card, files) -> None:
    for record in (b"a" * 10, b"b" * 4, b"c"):
        files.append_record(record, sfi=V)
    body = bytes.fromhex("040A") + b"a" * 10 + bytes.fromhex("0404") + b"b" * 4 + bytes.fromhex("0401") + b"c"
    assert xchg(card, 0x00, 0xB2, 0x01, 0x15, le=256) == (body, 0x9000)
    assert xchg(card, 0x00, 0xB2, 0x01, 0x15, le=len(body)) == (body, 0x9000)
    assert xchg(card, 0x00, 0xB2, 0x01, 0x15, le=17) == (body[:12], 0x6282)  # the second did not fit
    assert xchg(card, 0x00, 0xB2, 0x01, 0x15, le=5) == (b"", 0x6282)
    assert xchg(card, 0x00, 0xB2, 0x02, 0x15, le=256) == (body[12:], 0x9000)
    assert xchg(card, 0x00, 0xB2, 0x02, 0x16, le=256) == (body[18:] + body[12:18], 0x9000)  # last down to 2
    assert xchg(card, 0x00, 0xB2, 0x01, 0x15)[1] == 0x6700  # Le absent
    assert xchg(card, 0x00, 0xB2, 0x04, 0x15, le=256)[1] == 0x6A83


def test_search_record_forward_backward(card, files) -> None:
    for record in (b"abXd", b"Xbcd", b"abcd"):
        files.append_record(record, sfi=F)
    assert files.search_record(b"X") == [1, 2]
    assert files.read_record(0) == b"abXd"  # the pointer is on the first match
    assert files.search_record(b"X", start=2) == [2]
    assert files.search_record(b"cd", start=0, backward=True) == [3, 2]
    assert files.search_record(b"b", start=2, backward=True) == [2, 1]
    assert files.search_record(b"abcd") == [3]
    assert files.search_record(b"abcde") == []  # longer than a record: no match (6A83)
    assert xchg(card, 0x00, 0xA2, 0x01, 0x0C, b"Q", le=256)[1] == 0x6A83
    assert xchg(card, 0x00, 0xA2, 0x04, 0x0C, b"a", le=256)[1] == 0x6A83  # P1 not a record
    assert xchg(card, 0x00, 0xA2, 0x01, 0x0C, b"b", le=1) == (b"", 0x6C03)
    assert xchg(card, 0x00, 0xA2, 0x01, 0x0C, le=256)[1] == 0x6700
    assert xchg(card, 0x00, 0xA2, 0x01, 0x0E, b"b", le=256)[1] == 0x6A86  # only simple search
    assert xchg(card, 0x00, 0xA2, 0x01, 0x0E, le=256)[1] == 0x6A86  # mode before data


def test_record_commands_refuse_other_files(card, files) -> None:
    assert swof(card, "00 B2 01 04 00") == 0x6986  # a DF is current
    assert swof(card, "00 B2 01 24 00") == 0x6981  # SFI 4: transparent
    assert swof(card, "00 B2 01 04 00") == 0x6986  # the failed command selected nothing: still the DF
    files.select_ef(0x0C04)
    for apdu in ("00 DC 01 04 01 00", "00 D2 01 04 01 00", "00 E2 00 00 01 00", "00 A2 01 04 01 00"):
        assert swof(card, apdu) == 0x6981, apdu
    assert swof(card, "00 B2 01 2C 00") == 0x6A82  # no SFI 5
    assert swof(card, "00 E2 01 08 02 0000") == 0x6A86  # APPEND: P1 00
    assert swof(card, "00 E2 00 0C 02 0000") == 0x6A86  # and P2 b3-b1 000
