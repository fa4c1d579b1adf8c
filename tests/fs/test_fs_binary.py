"""READ / UPDATE / WRITE / ERASE BINARY (ISO/IEC 7816-4 7.2) on transparent EFs: offsets, SFI
addressing, Le handling and every status word the library documents for them."""

from __future__ import annotations

import os

import pytest
from cardsuite.apdu import StatusError
from cardsuite.fs.client import Structure, encode_fcp
from support.fsmodel import ALWAYS5, open_iso, raw, scratch_df, swof, xchg

pytestmark = pytest.mark.e2e

SIZE = 128  # EF 5001


@pytest.fixture
def ef(card):
    """EF 5001 selected (through its DF), filled with a known pattern."""
    fs = open_iso(card)
    fs.select_path([0x3F00, 0x5000, 0x5001])
    fs.update_binary(0, bytes(range(SIZE)))
    return fs


def test_read_at_offsets_and_lengths(card, ef) -> None:
    content = bytes(range(SIZE))
    assert xchg(card, 0x00, 0xB0, 0x00, 0x00, le=16) == (content[:16], 0x9000)
    assert xchg(card, 0x00, 0xB0, 0x00, 0x7F, le=1) == (content[127:], 0x9000)
    assert xchg(card, 0x00, 0xB0, 0x00, 0x00, le=256) == (content, 0x9000)  # Le 00: up to 256, no warning
    assert xchg(card, 0x00, 0xB0, 0x00, 0x70, le=0x20) == (content[0x70:], 0x6282)  # end reached before Ne
    assert ef.read_binary() == content
    assert ef.read_binary(100, 28) == content[100:]


def test_read_outside_the_file_and_without_le(card, ef) -> None:
    assert xchg(card, 0x00, 0xB0, 0x00, 0x80, le=1)[1] == 0x6B00
    assert xchg(card, 0x00, 0xB0, 0x7F, 0xFF, le=1)[1] == 0x6B00
    assert xchg(card, 0x00, 0xB0, 0x00, 0x00) == (b"", 0x6C80)  # Le absent: how much there is
    assert xchg(card, 0x00, 0xB0, 0x00, 0x7E) == (b"", 0x6C02)
    with pytest.raises(StatusError) as caught:
        ef.read_binary(120, 9)
    assert caught.value.sw == 0x6282 and caught.value.data == bytes(range(120, 128))


def test_sfi_addressing(card) -> None:
    fs = open_iso(card)
    fs.select_path([0x3F00, 0x5000])
    fs.update_binary(3, b"\xAA\xBB", sfi=1)
    assert xchg(card, 0x00, 0xB0, 0x81, 0x03, le=2) == (b"\xAA\xBB", 0x9000)
    assert xchg(card, 0x00, 0xB0, 0x00, 0x03, le=2) == (b"\xAA\xBB", 0x9000)  # the SFI made 5001 current
    assert swof(card, "00 B0 9F 00 01") == 0x6A82  # SFI 31: none
    assert swof(card, "00 B0 86 00 01") == 0x6A82  # no SFI 6 in DF 5000
    assert swof(card, "00 B0 C1 00 01") == 0x6A86  # b7 set with b8
    assert swof(card, "00 B0 A1 00 01") == 0x6A86  # b6 set with b8
    assert swof(card, "00 B0 82 00 01") == 0x6981  # SFI 2 is a record EF
    # a failed command selects nothing (ISO 7816-4 7.3.1): 5001 is still current
    assert xchg(card, 0x00, 0xB0, 0x00, 0x03, le=2) == (b"\xAA\xBB", 0x9000)
    assert xchg(card, 0x00, 0xB2, 0x00, 0x14, le=256)[1] == 0x6A83  # SFI 2, current record: the SFI reset it
    assert swof(card, "00 B0 00 00 01") == 0x9000  # ... and, failed, that selected nothing either


def test_update_and_its_errors(card, ef) -> None:
    assert raw(card, "00 D6 00 10 03 010203") == (b"", 0x9000)
    assert ef.read_binary(0x0F, 5) == bytes([0x0F, 1, 2, 3, 0x13])
    assert swof(card, "00 D6 00 7F 02 0102") == 0x6700  # past the end
    assert swof(card, "00 D6 00 80 01 01") == 0x6B00  # offset outside
    assert swof(card, "00 D6 00 80") == 0x6700  # no data: checked before the offset
    assert swof(card, "00 D6 00 00") == 0x6700
    assert raw(card, "00 D6 00 7F 01 EE") == (b"", 0x9000)  # the last byte
    assert ef.read_binary(0x7E, 2) == bytes([0x7E, 0xEE])


def test_write_ors_into_the_stored_bytes(card, ef) -> None:
    ef.update_binary(0, bytes.fromhex("F00F0000"))
    ef.write_binary(1, bytes.fromhex("F0FF01"))
    assert ef.read_binary(0, 4) == bytes.fromhex("F0FFFF01")
    assert swof(card, "00 D0 00 7F 02 0102") == 0x6700
    assert swof(card, "00 D0 00 90 01 01") == 0x6B00


def test_erase_to_the_end_and_to_an_offset(card, ef) -> None:
    content = bytearray(range(SIZE))
    ef.erase_binary(100)
    content[100:] = bytes(28)
    assert ef.read_binary() == bytes(content)
    ef.erase_binary(10, end=20)  # bytes 10..19; byte 20 is kept
    content[10:20] = bytes(10)
    assert ef.read_binary() == bytes(content)
    assert swof(card, "00 0E 00 14 02 0014") == 0x6A80  # end not after start
    assert swof(card, "00 0E 00 14 02 0081") == 0x6A80  # end beyond the file
    assert swof(card, "00 0E 00 80 02 0081") == 0x6B00  # start outside
    assert swof(card, "00 0E 00 00 01 10") == 0x6700  # data is 0 or 2 bytes
    assert swof(card, "00 0E 00 00 03 000010") == 0x6700
    assert ef.read_binary() == bytes(content)  # refused erases changed nothing


def test_no_current_ef_and_record_ef(card) -> None:
    fs = open_iso(card)
    for apdu in ("00 B0 00 00 01", "00 D6 00 00 01 00", "00 D0 00 00 01 00", "00 0E 00 00"):
        assert swof(card, apdu) == 0x6986, apdu  # only the application (MF) selected
    fs.select_path([0x3F00, 0x5000, 0x5004])
    for apdu in ("00 B0 00 00 01", "00 D6 00 00 01 00", "00 D0 00 00 01 00", "00 0E 00 00"):
        assert swof(card, apdu) == 0x6981, apdu


def test_a_large_file_over_several_commands(card) -> None:
    """Offsets above 255, reads and writes split at 256/255 bytes, 6B00 exactly at the end."""
    content = os.urandom(600)
    fcp = encode_fcp(0x0B01, Structure.TRANSPARENT, size=600, sfi=9, access=ALWAYS5)
    with scratch_df(card, fcp) as (fs, _):
        fs.update_binary(0, content, sfi=9)
        assert fs.read_binary(sfi=9) == content
        assert fs.read_binary(300, 300) == content[300:]
        assert xchg(card, 0x00, 0xB0, 0x02, 0x57, le=1) == (content[599:], 0x9000)
        assert xchg(card, 0x00, 0xB0, 0x02, 0x58, le=1)[1] == 0x6B00
        assert xchg(card, 0x00, 0xB0, 0x00, 0x00)[1] == 0x6C00  # 256 bytes or more available
        fs.update_binary(0x200, b"\x55" * 88)
        assert fs.read_binary(0x1FF, 2) == content[0x1FF:0x200] + b"\x55"
        with pytest.raises(ValueError):
            fs.read_binary(256, 1, sfi=9)  # the SFI form has a one-byte offset
