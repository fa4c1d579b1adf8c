"""File management and access (ISO/IEC 7816-9 and 7816-4 7.5): CREATE / DELETE FILE, the life
cycle commands, access conditions with and without the PIN, VERIFY and CHANGE REFERENCE DATA."""

from __future__ import annotations

import pytest
from cardsuite.apdu import StatusError
from cardsuite.fs.client import Access, FileLifeCycle, SelectReturn, Structure, encode_fcp
from support.fsmodel import ALWAYS5, PIN, next_fid, open_iso, scratch_df, sw_of, swof, xchg

pytestmark = pytest.mark.e2e


def forget_pin(card) -> None:
    assert swof(card, "00 20 FF 01") == 0x9000


def test_pin_protected_ef_with_and_without_the_pin(card) -> None:
    fs = open_iso(card)
    forget_pin(card)
    fs.select_path([0x3F00, 0x5000])
    assert swof(card, "00 B0 85 00 10") == 0x6982
    assert swof(card, "00 D6 85 00 01 AA") == 0x6982
    assert fs.pin_status() == 0x63C3
    fs.verify(PIN)
    assert fs.pin_status() == 0x9000
    fs.update_binary(0, b"secret", sfi=5)
    assert fs.read_binary(0, 6, sfi=5) == b"secret"
    assert swof(card, "00 E2 00 28 01 00") == 0x6981  # append on a transparent file: structure first
    forget_pin(card)
    assert swof(card, "00 B0 85 00 10") == 0x6982


def test_wrong_pins_count_down_and_the_right_one_restores(card) -> None:
    fs = open_iso(card)
    assert fs.verify(b"0000", expected=(0x63C2,)).sw == 0x63C2
    assert fs.verify(b"9999", expected=(0x63C1,)).sw == 0x63C1
    fs.verify(PIN)
    assert fs.pin_status() == 0x9000
    assert swof(card, "00 20 00 01 03 313233") == 0x6700
    assert swof(card, "00 20 00 02 04 31323334") == 0x6A88
    assert swof(card, "00 20 01 01 04 31323334") == 0x6A86


def test_create_needs_the_dfs_condition(card) -> None:
    fs = open_iso(card)
    forget_pin(card)
    fs.select_mf()
    fid = next_fid()
    fcp = encode_fcp(fid, Structure.TRANSPARENT, size=4)
    assert sw_of(lambda: fs.create_file(fcp)) == 0x6982
    fs.verify(PIN)
    fs.create_file(fcp)
    assert xchg(card, 0x00, 0xB0, 0x00, 0x00, le=4) == (bytes(4), 0x9000)  # created and current
    created = fs.select_fid(fid)
    assert created.access == bytes([0x01] * 5)  # without tag 86: the MF's create condition for all five
    forget_pin(card)
    assert swof(card, "00 B0 00 00 01") == 0x6982
    fs.verify(PIN)
    fs.delete_file()


def test_create_every_structure_and_read_back_its_fcp(card) -> None:
    with scratch_df(card) as (fs, df):
        fs.create_file(encode_fcp(0x0D01, Structure.TRANSPARENT, size=5, sfi=1, life_cycle=0x03))
        fcp = fs.select_ef(0x0D01)
        assert (fcp.structure, fcp.size, fcp.sfi) == (Structure.TRANSPARENT, 5, 1)
        assert fcp.life_cycle is FileLifeCycle.INITIALISATION
        assert fcp.access == bytes(5)  # the scratch DF's create condition: always
        fs.select_fid(df)
        fs.create_file(encode_fcp(0x0D02, Structure.CYCLIC, record_size=3, records=7, sfi=2))
        fcp = fs.select_ef(0x0D02)
        assert (fcp.structure, fcp.record_size, fcp.size, fcp.record_count) == (Structure.CYCLIC, 3, 21, 0)
        fs.select_fid(df)
        fs.create_file(encode_fcp(0x0D03, Structure.LINEAR_FIXED, size=40, record_size=8))  # count from 80
        assert fs.select_ef(0x0D03).size == 40
        fs.select_fid(df)
        fs.create_file(encode_fcp(0x0D04, Structure.LINEAR_VARIABLE, size=50, access=bytes.fromhex("0001FF0101")))
        fcp = fs.select_ef(0x0D04)
        assert (fcp.record_size, fcp.size, fcp.condition(Access.APPEND)) == (255, 50, 0xFF)
        fs.select_fid(df)
        fs.create_file(encode_fcp(0x0D05, Structure.DF, df_name=b"scratch-sub"))
        assert fs.select_df_name(b"scratch-sub").fid == 0x0D05
        assert fs.tree([0x3F00, df]).fcp.children == (0x0D01, 0x0D02, 0x0D03, 0x0D04, 0x0D05)


def template(*objects: str) -> str:
    body = bytes.fromhex("".join(objects))
    return (bytes([0x62, len(body)]) + body).hex()


def test_create_file_refusals(card) -> None:
    with scratch_df(card, encode_fcp(0x0E01, Structure.TRANSPARENT, size=4, sfi=1)) as (fs, df):
        def sw_create(fcp_hex: str) -> int:
            fs.select_path([0x3F00, df], returns=SelectReturn.NONE)
            return swof(card, f"00 E0 00 00 {len(bytes.fromhex(fcp_hex)):02X} {fcp_hex}")

        size, fid = "80020004", "83020E02"
        assert sw_create("6206 82020141 8302") == 0x6A80  # an object runs past the end
        assert sw_create("6308 82020141 83020E02") == 0x6A80  # not an FCP template (62)
        assert sw_create("6209 82020141 83020E02") == 0x6A80  # template length wrong
        assert sw_create(template(size, "82020141", "83023F00")) == 0x6A80  # reserved FID
        assert sw_create(template(size, "82020141", "8302FFFF")) == 0x6A80
        assert sw_create(template(size, "82020141")) == 0x6A80  # no FID
        assert sw_create(template(size, "82020941", fid)) == 0x6A80  # unknown descriptor
        assert sw_create(template("82020141", fid)) == 0x6A80  # transparent without a size
        assert sw_create(template("82050241000003", fid)) == 0x6A80  # record size 0
        assert sw_create(template("820502410010FF", fid)) == 0x6A80  # 255 records
        assert sw_create(template("8203044100", fid)) == 0x6A80  # variable without a budget
        assert sw_create(template(size, "82020141", "83020E01")) == 0x6A89  # FID exists
        assert sw_create(template(size, "82020141", fid, "880108")) == 0x6A89  # SFI exists
        assert sw_create(template(size, "82020141", fid, "880109")) == 0x6A80  # SFI byte b3-b1 not 000
        assert sw_create(template(size, "82020141", fid, "8801F8")) == 0x6A80  # SFI 31
        assert sw_create(template(size, "82020141", fid, "8A0107")) == 0x6A80  # life cycle 07
        assert sw_create(template(size, "82020141", fid, "860400000000")) == 0x6A80  # 4 conditions
        assert sw_create(template("80027FFF", "82020141", fid)) == 0x6A84  # beyond the data limit
        assert sw_create(template("820138", fid, "8411" + "41" * 17)) == 0x6A80  # name over 16 bytes
        assert swof(card, "00 E0 00 01 03 820138") == 0x6A86
        assert swof(card, "00 E0 00 00") == 0x6700
        assert fs.select_fid(df).children == (0x0E01,)  # nothing was created


def test_df_name_must_be_unique(card) -> None:
    with scratch_df(card) as (fs, df):
        name = bytes.fromhex("F063617264465301")  # DF 5000's name
        assert sw_of(lambda: fs.create_file(encode_fcp(0x0F01, Structure.DF, df_name=name))) == 0x6A8A


def test_the_file_count_limit(card) -> None:
    with scratch_df(card) as (fs, df):
        created = 0
        while True:
            fs.select_fid(df)
            try:
                fs.create_file(encode_fcp(0x1000 + created, Structure.TRANSPARENT, size=1))
            except StatusError as exc:
                assert exc.sw == 0x6A84
                break
            created += 1
        assert created == 24 - 13  # 24 files in the tree at most: 12 installed, the scratch DF, and these


def test_delete_file(card) -> None:
    with scratch_df(card, encode_fcp(0x0E01, Structure.TRANSPARENT, size=4, sfi=1, access=ALWAYS5),
                   encode_fcp(0x0E02, Structure.DF, access=bytes.fromhex("0000000100"))) as (fs, df):
        fs.select_path([0x3F00, df, 0x0E02])
        fs.create_file(encode_fcp(0x0E03, Structure.TRANSPARENT, size=4, access=ALWAYS5))
        fs.select_fid(0x0E03)
        fs.select_fid(df)
        fs.delete_file(0x0E01)
        assert sw_of(lambda: fs.select_ef(0x0E01)) == 0x6A82
        xchg(card, 0x00, 0x20, 0xFF, 0x01)  # forget the PIN: DF 0E02 needs it to be deleted
        assert sw_of(lambda: fs.delete_file(0x0E02)) == 0x6982
        fs.verify(PIN)
        fs.select_path([0x3F00, df, 0x0E02, 0x0E03])
        fs.select_fid(df)
        fs.delete_file(0x0E02)  # with its subtree
        assert sw_of(lambda: fs.select_path([0x3F00, df, 0x0E02, 0x0E03])) == 0x6A82
        assert fs.select_fid(df).children == ()
        assert swof(card, "00 E4 00 00 02 0E09") == 0x6A82
        assert swof(card, "00 E4 00 00 01 0E") == 0x6700
        assert swof(card, "00 E4 01 00 02 0E01") == 0x6A86
        fs.select_mf()
        assert swof(card, "00 E4 00 00") == 0x6985  # the MF itself


def test_deleting_the_current_ef_leaves_no_current_ef(card) -> None:
    with scratch_df(card, encode_fcp(0x0E01, Structure.TRANSPARENT, size=4, sfi=1, access=ALWAYS5)) as (fs, df):
        fs.select_ef(0x0E01)
        fs.delete_file()  # absent data: the current EF
        assert swof(card, "00 B0 00 00 01") == 0x6986
        assert fs.select_fid(df).fid == df


def test_life_cycle_transitions(card) -> None:
    created = encode_fcp(0x0E02, Structure.TRANSPARENT, size=4, sfi=2, access=ALWAYS5, life_cycle=0x01)
    plain = encode_fcp(0x0E01, Structure.TRANSPARENT, size=4, sfi=1, access=ALWAYS5)
    with scratch_df(card, plain, created) as (fs, df):
        fs.deactivate_file(0x0E01)
        assert swof(card, "00 A4 02 04 02 0E01 00") == 0x6283  # selected, with the warning after the FCP
        assert fs.select_ef(0x0E01).life_cycle is FileLifeCycle.DEACTIVATED
        assert swof(card, "00 B0 00 00 01") == 0x6985
        assert swof(card, "00 D6 00 00 01 00") == 0x6985
        fs.deactivate_file()  # again: allowed, 04 → 04
        fs.activate_file()
        assert xchg(card, 0x00, 0xB0, 0x00, 0x00, le=1) == (b"\x00", 0x9000)
        fs.select_fid(df)
        assert sw_of(lambda: fs.deactivate_file(0x0E02)) == 0x6985  # creation state: only activate
        fs.activate_file(0x0E02)
        assert fs.select_ef(0x0E02).life_cycle is FileLifeCycle.ACTIVATED
        fs.terminate_ef()
        assert swof(card, "00 A4 02 0C 02 0E02") == 0x6285
        assert swof(card, "00 B0 00 00 01") == 0x6985
        for apdu in ("00 44 00 00", "00 04 00 00", "00 E8 00 00"):
            assert swof(card, apdu) == 0x6985, apdu  # nothing leaves termination
        fs.select_fid(df)
        assert swof(card, "00 E8 00 00 02 0E01") == 0x9000
        assert swof(card, "00 E6 00 00 02 0E01") == 0x6981  # TERMINATE DF on an EF
        assert swof(card, "00 44 00 01") == 0x6A86
        assert swof(card, "00 44 00 00 01 0E") == 0x6700


def test_admin_conditions_need_the_pin(card) -> None:
    fs = open_iso(card)
    forget_pin(card)
    fs.select_path([0x3F00, 0x5000, 0x5001])
    assert sw_of(fs.deactivate_file) == 0x6982
    assert sw_of(fs.delete_file) == 0x6982
    fs.select_mf()
    assert sw_of(lambda: fs.create_file(encode_fcp(0x0E01, Structure.DF))) == 0x6982


def test_class_and_unknown_instructions(card) -> None:
    open_iso(card)
    assert swof(card, "80 B0 00 00 01") == 0x6E00
    assert swof(card, "00 CA 00 00 00") == 0x6D00


# Tests with a card of their own come last: over vpcd, opening and closing another simulated
# card resets the module's card in pcscd (see the report), which later tests would trip over.


@pytest.mark.isolated
def test_a_blocked_pin_stays_blocked(card) -> None:
    fs = open_iso(card)
    for left in (2, 1, 0):  # ISO 7816-4 7.5.6: 63C0 on the try that blocks, 6983 afterwards
        assert fs.verify(b"0000", expected=(0x63C0 | left,)).sw == 0x63C0 | left
    assert fs.verify(b"0000", expected=(0x6983,)).sw == 0x6983
    assert fs.verify(PIN, expected=(0x6983,)).sw == 0x6983
    assert fs.pin_status() == 0x6983


@pytest.mark.isolated
def test_change_reference_data(card) -> None:
    fs = open_iso(card)
    assert sw_of(lambda: fs.change_pin(b"5678")) == 0x6982  # the PIN must be verified first
    fs.verify(PIN)
    fs.change_pin(b"56789")
    assert fs.pin_status() != 0x9000  # verify again after a change
    assert fs.verify(PIN, expected=(0x63C2,)).sw == 0x63C2
    fs.verify(b"56789")
    assert swof(card, "00 24 00 01 04 31323334") == 0x6700  # P1 00: the current PIN and the new one
    assert swof(card, "00 24 02 01 04 31323334") == 0x6A86
    assert swof(card, "00 24 01 01 09 313233343536373839") == 0x6700
