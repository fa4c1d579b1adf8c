"""SELECT (ISO/IEC 7816-4 7.1.1) on the ISO applet's tree, every P1/P2 variant and error, and the
FCP / FCI / FMD the library returns, decoded by cardsuite.fs."""

from __future__ import annotations

import pytest
from cardsuite.apdu import StatusError
from cardsuite.fs.client import (
    Access,
    FileControlParameters,
    FileLifeCycle,
    FileRef,
    Occurrence,
    SelectReturn,
    Structure,
    format_path,
    parse_path,
)
from support import ISO_AID
from support.fsmodel import open_iso, raw, swof, xchg

pytestmark = pytest.mark.e2e

NAME_APP = bytes.fromhex("F063617264465301")
NAME_SHARED = bytes.fromhex("F063617264465302")
# 8C: the conditions of 86 in ISO's compact form (AM byte, then SC bytes; 11 = the PIN, see test_fs_generic)
FCP_MF = bytes.fromhex("6224 820138 83023F00 8A0105 8605FFFF010101 8C077E111111111111 8508 5000 6000 2F00 2F01")
FCP_5000 = bytes.fromhex("6230 820138 83025000 8408F063617264465301 8A0105 8605FFFF010101 8C077E111111111111"
                         "850A 5001 5002 5003 5004 5005")
FCP_5001 = bytes.fromhex("6223 80020080 82020141 83025001 880108 8A0105 86050000000101 8C087F11111111000000")


@pytest.fixture
def iso(card):
    return open_iso(card)


def test_fcp_of_mf_df_and_ef_byte_for_byte(card, iso) -> None:
    assert raw(card, "00 A4 00 04 02 3F00 00") == (FCP_MF, 0x9000)
    assert raw(card, "00 A4 00 04 02 5000 00") == (FCP_5000, 0x9000)
    assert raw(card, "00 A4 00 04 02 5001 00") == (FCP_5001, 0x9000)


def test_fci_holds_the_fcp_objects_and_fmd_the_df_name(card, iso) -> None:
    iso.select_fid(0x5000)
    assert raw(card, "00 A4 00 00 02 5001 00") == (bytes([0x6F]) + FCP_5001[1:], 0x9000)
    assert raw(card, "00 A4 00 08 02 5000 00") == (bytes.fromhex("640A 8408") + NAME_APP, 0x9000)
    assert raw(card, "00 A4 00 08 02 5001 00") == (bytes.fromhex("6400"), 0x9000)  # an EF has no name


def test_p2_0c_and_le_absent_return_no_data(card, iso) -> None:
    assert raw(card, "00 A4 00 0C 02 5000") == (b"", 0x9000)
    assert raw(card, "00 A4 00 04 02 5000") == (b"", 0x9000)  # Le absent: Ne = 0
    assert raw(card, "00 A4 00 0C 02 5000 00") == (b"", 0x9000)


def test_short_le_gets_6cxx_with_the_response_length(card, iso) -> None:
    iso.select_fid(0x5000)
    assert raw(card, "00 A4 00 04 02 5001 10") == (b"", 0x6C25)
    assert raw(card, "00 A4 00 04 02 5001 25") == (FCP_5001, 0x9000)
    assert raw(card, "00 A4 00 04 02 5000 01") == (b"", 0x6C32)


def test_decoded_fcp_of_each_structure(iso) -> None:
    mf = iso.select_mf()
    assert (mf.fid, mf.structure, mf.children, mf.df_name) == (0x3F00, Structure.DF,
                                                              (0x5000, 0x6000, 0x2F00, 0x2F01), None)
    df = iso.select_fid(0x5000)
    assert (df.df_name, df.life_cycle, df.access) == (NAME_APP, FileLifeCycle.ACTIVATED, bytes.fromhex("FFFF010101"))
    assert df.children == (0x5001, 0x5002, 0x5003, 0x5004, 0x5005)
    expected = {
        0x5001: (Structure.TRANSPARENT, 128, None, None, 1),
        0x5002: (Structure.LINEAR_FIXED, 96, 16, None, 2),
        0x5003: (Structure.LINEAR_VARIABLE, 100, 32, None, 3),
        0x5004: (Structure.CYCLIC, 32, 8, None, 4),
        0x5005: (Structure.TRANSPARENT, 16, None, None, 5),
    }
    for fid, (structure, size, record_size, _, sfi) in expected.items():
        fcp = iso.select_ef(fid)
        assert (fcp.fid, fcp.structure, fcp.size, fcp.record_size, fcp.sfi) == (fid, structure, size, record_size, sfi)
        assert fcp.data_coding == 0x41
        assert fcp.children is None
    secret = iso.select_ef(0x5005)
    assert secret.condition(Access.READ) == 0x01 and secret.condition(Access.APPEND) == 0xFF
    assert "read:key 01" in secret.summary() and "append:never" in secret.summary()


def test_fcp_decoder_handles_nested_templates_and_two_byte_counts() -> None:
    nested = FileControlParameters.decode(bytes.fromhex("6F0D 620B 8302ABCD 82050241001003"))
    assert (nested.fid, nested.structure, nested.record_size, nested.record_count) == (
        0xABCD, Structure.LINEAR_FIXED, 16, 3)
    counted = FileControlParameters.decode(bytes.fromhex("6208 8206 06410008 0102"))
    assert (counted.structure, counted.record_size, counted.record_count) == (Structure.CYCLIC, 8, 0x102)
    plain = FileControlParameters.decode(bytes.fromhex("8A0104 8800 C00101"))
    assert plain.life_cycle is FileLifeCycle.DEACTIVATED and plain.sfi is None and plain.proprietary == {0xC0: b"\x01"}


def test_select_by_fid_near_rules(card, iso) -> None:
    assert swof(card, "00 A4 00 0C 02 5001") == 0x6A82  # not a child of the MF
    assert swof(card, "00 A4 00 0C 02 5000") == 0x9000  # child DF
    assert swof(card, "00 A4 00 0C 02 5001") == 0x9000  # child EF
    assert swof(card, "00 A4 00 0C 02 5000") == 0x9000  # the current DF itself
    assert swof(card, "00 A4 00 0C 02 6000") == 0x9000  # a sibling of the current DF
    assert swof(card, "00 A4 00 0C 02 5002") == 0x6A82  # a sibling's child is not near
    assert swof(card, "00 A4 00 0C 02 3F00") == 0x9000
    assert swof(card, "00 A4 00 0C 01 50") == 0x6700


def test_select_without_data_is_the_mf(card, iso) -> None:
    iso.select_fid(0x5000)
    assert xchg(card, 0x00, 0xA4, 0x00, 0x04, le=256) == (FCP_MF, 0x9000)
    assert swof(card, "00 B0 00 00 01") == 0x6986


def test_select_child_df_ef_and_parent(card, iso) -> None:
    assert swof(card, "00 A4 01 0C 02 5000") == 0x9000
    assert swof(card, "00 A4 01 0C 02 5001") == 0x6A82  # an EF is not a child DF
    assert swof(card, "00 A4 02 0C 02 5001") == 0x9000
    assert swof(card, "00 A4 02 0C 02 6000") == 0x6A82  # P1 02 from DF 5000: 6000 is not its EF
    assert xchg(card, 0x00, 0xA4, 0x03, 0x04, le=256) == (FCP_MF, 0x9000)  # parent of 5000
    assert swof(card, "00 A4 03 0C") == 0x6A82  # the MF has no parent
    assert swof(card, "00 A4 03 0C 02 5000") == 0x6700  # P1 03 takes no data
    assert swof(card, "00 A4 01 0C 01 50") == 0x6700
    assert swof(card, "00 A4 02 0C 03 500100") == 0x6700


def test_select_by_df_name_first_next_and_prefix(card, iso) -> None:
    assert iso.select_df_name(NAME_APP).fid == 0x5000
    assert iso.select_df_name(NAME_SHARED).fid == 0x6000
    assert iso.select_df_name(NAME_APP[:7]).fid == 0x5000  # prefix: the first in pre-order
    assert iso.select_df_name(NAME_APP[:7], occurrence=Occurrence.NEXT).fid == 0x6000
    with pytest.raises(StatusError) as caught:
        iso.select_df_name(NAME_APP[:7], occurrence=Occurrence.NEXT)
    assert caught.value.sw == 0x6A82
    assert swof(card, "00 A4 04 0C 03 F06399") == 0x6A82
    assert swof(card, "00 A4 04 0D 02 F063") == 0x6A86  # last occurrence: not supported
    assert swof(card, "00 A4 04 0F 02 F063") == 0x6A86  # previous
    assert swof(card, "00 A4 04 0C 11 " + "F0" * 17) == 0x6700
    # (SELECT P1 04 without data never reaches the applet: the Java Card runtime answers it.)


def test_select_by_path(card, iso) -> None:
    assert iso.select_path([0x3F00, 0x5000, 0x5003]).fid == 0x5003
    assert iso.select_path(parse_path("3F00/6000/6002")).structure is Structure.CYCLIC
    assert swof(card, "00 A4 08 0C 02 5003") == 0x6A82  # from the MF, without 3F00
    assert swof(card, "00 A4 08 0C 06 5000 5001 5002") == 0x6A82  # through an EF
    assert swof(card, "00 A4 08 0C 03 500050") == 0x6700  # odd length
    iso.select_fid(0x6000)
    assert iso.select_path([0x6001], from_mf=False).fid == 0x6001
    assert swof(card, "00 A4 09 0C 02 5001") == 0x6A82  # not below the current DF 6000


def test_bad_p1_p2_are_6a86(card, iso) -> None:
    for apdu in ("00 A4 05 0C 02 5000", "00 A4 0A 0C 02 5000", "00 A4 00 1C 02 5000", "00 A4 00 0D 02 5000",
                 "00 A4 00 8C 02 5000", "00 A4 00 0E 02 5000"):
        assert swof(card, apdu) == 0x6A86, apdu


def test_selection_makes_files_current(card, iso) -> None:
    iso.select_fid(0x5000)
    assert swof(card, "00 B0 00 00 01") == 0x6986  # a DF selected: no current EF
    iso.select_ef(0x5001)
    assert xchg(card, 0x00, 0xB0, 0x00, 0x00, le=1)[1] == 0x9000
    assert swof(card, "00 A4 00 0C 02 5002") == 0x9000  # sibling EF of the current EF
    assert swof(card, "00 B0 00 00 01") == 0x6981  # the record EF is current now
    card.select(ISO_AID)  # re-selecting the application forgets the files
    assert swof(card, "00 B0 00 00 01") == 0x6986


def test_tree_walks_every_file(iso) -> None:
    tree = iso.tree()
    flat = {}

    def collect(node):
        flat[format_path(node.path)] = node.fcp.structure
        for child in node.children:
            collect(child)

    collect(tree)
    assert flat == {
        "3F00": Structure.DF, "3F00/5000": Structure.DF, "3F00/5000/5001": Structure.TRANSPARENT,
        "3F00/5000/5002": Structure.LINEAR_FIXED, "3F00/5000/5003": Structure.LINEAR_VARIABLE,
        "3F00/5000/5004": Structure.CYCLIC, "3F00/5000/5005": Structure.TRANSPARENT,
        "3F00/6000": Structure.DF, "3F00/6000/6001": Structure.TRANSPARENT, "3F00/6000/6002": Structure.CYCLIC,
        "3F00/2F00": Structure.LINEAR_VARIABLE, "3F00/2F01": Structure.TRANSPARENT,
    }
    assert [format_path(c.path) for c in iso.tree([0x5000]).children][:2] == ["3F00/5000/5001", "3F00/5000/5002"]


def test_file_references_parse() -> None:
    assert FileRef.parse("3F00/5000/5001") == FileRef((0x3F00, 0x5000, 0x5001))
    assert FileRef.parse("3F00/5000/sfi:3") == FileRef((0x3F00, 0x5000), 3)
    assert FileRef.parse("sfi:0x1E") == FileRef((), 30)
    assert str(FileRef.parse("5000/SFI:2")) == "5000/sfi:2"
    for bad in ("", "3F0", "3F00/sfi:0", "sfi:31", "3F00/XYZW"):
        with pytest.raises(ValueError):
            FileRef.parse(bad)
    assert SelectReturn.NONE == 0x0C
