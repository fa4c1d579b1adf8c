"""State changes only when a command completes (ISO/IEC 7816-4 7.3.1: "if the process is completed,
then the identified EF becomes current and the record pointer is reset"): a 6Cxx answer leaves the
card exactly as before, so that the standard re-send with Le = xx gets the answer; a failed command
moves neither the current EF nor the record pointer; naming the current EF by its SFI resets the
pointer. The APDUs are the ones of the issue that found them."""

from __future__ import annotations

import pytest
from cardsuite.fs.client import Structure, encode_fcp
from support.fsmodel import ALWAYS5, open_iso, raw, scratch_df, swof

pytestmark = pytest.mark.e2e

FIXED = encode_fcp(0x0D01, Structure.LINEAR_FIXED, record_size=16, records=4, sfi=1, access=ALWAYS5)
RECORDS = [bytes([n]) * 16 for n in (1, 2, 3)]


@pytest.fixture
def fixed(card):
    """A linear fixed EF of three 16-byte records, current, the pointer on record 1."""
    with scratch_df(card, FIXED) as (fs, _):
        for record in RECORDS:
            fs.append_record(record, sfi=1)
        fs.select_ef(0x0D01)
        assert raw(card, "00 B2 00 00 00") == (RECORDS[0], 0x9000)  # first
        yield fs


def test_select_answered_6cxx_selects_nothing(card) -> None:
    iso = open_iso(card)
    iso.select_fid(0x5000)
    data, sw = raw(card, "00 A4 03 04 05")  # parent of DF 5000, FCP, Le too short
    assert sw & 0xFF00 == 0x6C00
    mf, sw = raw(card, f"00 A4 03 04 {sw & 0xFF:02X}")  # the re-send: still the parent of 5000
    assert sw == 0x9000  # (was 6A82: the first answer had made the MF current)
    assert mf == iso.select_mf().raw
    iso.select_fid(0x5000)
    assert swof(card, "00 A4 02 04 02 5001 05") & 0xFF00 == 0x6C00
    assert swof(card, "00 B0 00 00 01") == 0x6986  # 5001 did not become current: DF 5000 still is


def test_read_record_answered_6cxx_keeps_the_pointer(card, fixed) -> None:
    assert raw(card, "00 B2 00 02 08") == (b"", 0x6C10)  # next, Le 08
    assert raw(card, "00 B2 00 02 10") == (RECORDS[1], 0x9000)  # the re-send gets record 2, not 3
    for mode in (0x00, 0x01, 0x03):  # first, last, previous
        assert raw(card, f"00 B2 00 {mode:02X} 01") == (b"", 0x6C10)
        assert raw(card, "00 B2 00 04 00") == (RECORDS[1], 0x9000)  # current record: still 2
    assert raw(card, "00 B2 00 02 00") == (RECORDS[2], 0x9000)


def test_search_answered_6cxx_keeps_the_pointer(card, fixed) -> None:
    fixed.update_record(3, b"\x01" * 16)  # records 1 and 3 hold 01
    assert raw(card, "00 B2 00 00 00") == (RECORDS[0], 0x9000)
    assert raw(card, "00 B2 00 02 00") == (RECORDS[1], 0x9000)  # ... now on record 2
    assert raw(card, "00 A2 00 04 01 01 01") == (b"", 0x6C02)  # records 1 and 3 match, Le 1
    assert raw(card, "00 B2 00 04 00") == (RECORDS[1], 0x9000)  # the pointer still on record 2
    assert raw(card, "00 A2 00 04 01 01 02") == (b"\x01\x03", 0x9000)  # the re-send
    assert raw(card, "00 B2 00 04 00") == (b"\x01" * 16, 0x9000)  # now on the first match


def test_failed_read_binary_by_sfi_leaves_the_current_ef(card) -> None:
    iso = open_iso(card)
    assert swof(card, "00 20 FF 01") == 0x9000  # the PIN not verified
    iso.select_path([0x3F00, 0x5000, 0x5001])
    assert swof(card, "00 B0 85 00 01") == 0x6982  # EF 5005 by SFI: PIN needed
    assert raw(card, "00 B0 00 00 01")[1] == 0x9000  # EF 5001 is still current (was 5005: 6982)


def test_failed_read_record_by_sfi_leaves_the_current_ef(card) -> None:
    iso = open_iso(card)
    iso.select_path([0x3F00, 0x5000, 0x5001])
    assert swof(card, "00 B2 09 24 00") == 0x6A83  # EF 5004 by SFI 4, record 9: none
    assert raw(card, "00 B0 00 00 01")[1] == 0x9000  # EF 5001 still current (was 5004: 6981)


def test_failed_update_record_keeps_the_pointer(card, fixed) -> None:
    assert swof(card, "00 DC 00 02 03 AABBCC") == 0x6700  # next, wrong length
    assert raw(card, "00 B2 00 04 00") == (RECORDS[0], 0x9000)  # the pointer still on record 1
    assert swof(card, "00 D2 00 02 03 AABBCC") == 0x6700  # WRITE RECORD next, wrong length
    assert raw(card, "00 B2 00 02 00") == (RECORDS[1], 0x9000)  # next is still record 2


def test_sfi_naming_the_current_ef_resets_the_pointer(card, fixed) -> None:
    assert raw(card, "00 B2 00 02 00") == (RECORDS[1], 0x9000)  # pointer on record 2
    assert raw(card, "00 B2 00 0A 00") == (RECORDS[0], 0x9000)  # next by SFI 1: reset, so the first
    assert raw(card, "00 B2 00 04 00") == (RECORDS[0], 0x9000)  # and the pointer is on it
    assert swof(card, "00 B2 00 0C 00") == 0x6A83  # current record by SFI: the reset left none
    assert raw(card, "00 B2 00 04 00") == (RECORDS[0], 0x9000)  # ... and that failure changed nothing
