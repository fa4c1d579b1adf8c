"""What a generic ISO/IEC 7816-4 client (OpenSC, a PC/SC probe) needs from the ISO applet: an FCI when it
selects the application by AID, the access rules in ISO's compact form (8C) beside the library's 86,
EF.DIR and EF.ATR, the interindustry classes, CREATE FILE as generic clients send it, and the PIN
commands of ISO 7816-4 7.5 (CHANGE REFERENCE DATA with the current PIN, RESET RETRY COUNTER, GET
CHALLENGE). OpenSC itself drives the applet in test_fs_opensc.py."""

from __future__ import annotations

import pytest
from cardsuite.fs.client import FileControlParameters, Structure
from cardsuite.tlv import parse_tlv
from support import ECHO_AID, ISO_AID, select_hex
from support.fsmodel import PIN, next_fid, open_iso, raw, scratch_df, sw_of, swof, xchg

pytestmark = pytest.mark.e2e

PUK = b"12345678"  # the ISO applet's test default (its install parameters)
NAME_APP = bytes.fromhex("F063617264465301")
NAME_SHARED = bytes.fromhex("F063617264465302")
EF_DIR = [
    bytes.fromhex("6119 4F08") + ISO_AID + bytes.fromhex("500D") + b"cardsuite ISO",
    bytes.fromhex("6118 4F08") + NAME_APP + bytes.fromhex("500C") + b"cardsuite FS",
    bytes.fromhex("611C 4F08") + NAME_SHARED + bytes.fromhex("5010") + b"cardsuite shared",
]


def test_select_by_aid_returns_the_fci_with_the_df_name(card) -> None:
    fci, sw = raw(card, select_hex(ISO_AID) + "00")
    assert (fci[0], sw) == (0x6F, 0x9000)
    fcp = FileControlParameters.decode(fci)
    assert (fcp.df_name, fcp.fid, fcp.structure) == (ISO_AID, 0x3F00, Structure.DF)
    assert fcp.children == (0x5000, 0x6000, 0x2F00, 0x2F01)
    assert swof(card, "00 B0 00 00 01") == 0x6986  # the application's root is current, no EF
    fcp_p2, sw = raw(card, f"00 A4 04 04 08 {ISO_AID.hex()} 00")  # P2 04: the FCP
    assert (fcp_p2, sw) == (bytes((0x62,)) + fci[1:], 0x9000)
    assert raw(card, f"00 A4 04 08 08 {ISO_AID.hex()} 00") == (bytes.fromhex("640A 8408") + ISO_AID, 0x9000)
    assert raw(card, f"00 A4 04 0C 08 {ISO_AID.hex()}") == (b"", 0x9000)
    assert raw(card, select_hex(ISO_AID)) == (b"", 0x9000)  # Le absent: no data
    assert raw(card, select_hex(ISO_AID) + "05") == (b"", 0x6C00 | len(fci))
    assert raw(card, select_hex(ISO_AID) + f"{len(fci):02X}") == (fci, 0x9000)


def test_compact_security_attributes_beside_the_proprietary_ones(card) -> None:
    iso = open_iso(card)
    # ISO 7816-4 compact form: AM byte b7 delete, b6 terminate, b5 activate, b4 deactivate, b3 write /
    # append, b2 update / erase, b1 read, then one SC byte each (00 always, FF never, 11 the PIN).
    assert iso.select_fid(0x5000).compact == bytes.fromhex("7E 11 11 11 11 11 11")  # DF: b3 b2 create
    assert iso.select_ef(0x5001).compact == bytes.fromhex("7F 11 11 11 11 00 00 00")
    assert iso.select_ef(0x5005).compact == bytes.fromhex("7B 11 11 11 11 11 11")  # write ≠ append: no b3
    assert iso.select_ef(0x5005).access == bytes.fromhex("0101FF0101")  # the library's own form stays
    iso.select_mf()
    assert iso.select_ef(0x2F00).compact == bytes.fromhex("7F 11 11 11 11 11 11 00")


def test_ef_dir_lists_the_applications(card) -> None:
    iso = open_iso(card)
    fcp = iso.select_ef(0x2F00)
    assert (fcp.structure, fcp.sfi, fcp.record_count) == (Structure.LINEAR_VARIABLE, 30, 3)
    assert iso.read_all_records() == EF_DIR
    for record in EF_DIR:
        [(tag, template)] = parse_tlv(record)
        assert tag == 0x61 and [t for t, _ in parse_tlv(template)] == [0x4F, 0x50]
    assert raw(card, "00 B2 01 F4 00") == (EF_DIR[0], 0x9000)  # by its SFI 30 from anywhere in the MF
    assert swof(card, "00 DC 01 04 02 6100") == 0x6982  # the PIN to change it


def test_ef_atr_says_what_the_applet_supports(card) -> None:
    iso = open_iso(card)
    assert iso.select_ef(0x2F01).sfi == 29
    # card capabilities (tag 47): selection by full / partial name, path, FID; SFI; record numbers;
    # data coding 41; no chaining, no extended lengths, one logical channel
    assert raw(card, "00 B0 9D 00 00") == (bytes.fromhex("4703F64100"), 0x9000)


@pytest.mark.parametrize(("cla", "sw"), [
    (0x0C, 0x6882), (0x04, 0x6882), (0x08, 0x6882), (0x1C, 0x6882),  # secure messaging (before chaining)
    (0x10, 0x6884),  # chaining
    (0x80, 0x6E00), (0x84, 0x6E00), (0x20, 0x6E00), (0xFF, 0x6E00),  # proprietary, RFU
])
def test_classes_it_does_not_support(card, cla: int, sw: int) -> None:
    open_iso(card)
    assert swof(card, f"{cla:02X} A4 00 0C 02 3F00") == sw  # (all 6E00 before, but for none)


@pytest.mark.parametrize(("cla", "sw"), [
    (0x01, 0x9000), (0x02, 0x9000), (0x03, 0x9000), (0x40, 0x9000), (0x45, 0x9000), (0x4F, 0x9000),
    (0x0D, 0x6882), (0x60, 0x6882), (0x6F, 0x6882), (0x13, 0x6884), (0x50, 0x6884), (0x3F, 0x6E00),
])
def test_classes_with_channel_bits(card, cla: int, sw: int) -> None:
    """A class naming another channel: where the runtime hands it to the applet whatever the channel (a
    simulator without logical channels), the applet's answer for the class; where the channel is not
    open, the runtime's 6881. Never 6E00 for an interindustry class (the answer before)."""
    open_iso(card)
    assert swof(card, f"{cla:02X} A4 00 0C 02 3F00") in (sw, 0x6881)


@pytest.mark.isolated
def test_classes_on_a_second_logical_channel(card) -> None:
    """On a runtime with logical channels (MANAGE CHANNEL, ISO 7816-4 11.1.2): the applet is not
    multiselectable, so selecting it on a second channel while the basic channel has it is refused
    (the runtime's 6985); once it is selected there alone, it takes that channel's classes."""
    open_iso(card)
    data, sw = xchg(card, 0x00, 0x70, 0x00, 0x00, le=1)
    if sw != 0x9000:
        pytest.skip(f"the simulator has no logical channels (MANAGE CHANNEL answered {sw:04X})")
    channel = data[0]
    try:
        assert swof(card, f"{channel:02X} A4 04 0C 08 {ISO_AID.hex()}") == 0x6985  # active on channel 0
        card.select(ECHO_AID)  # the basic channel leaves it
        assert swof(card, f"{channel:02X} A4 04 0C 08 {ISO_AID.hex()}") == 0x9000
        assert swof(card, f"{channel:02X} A4 00 0C 02 5000") == 0x9000
        assert swof(card, f"{channel | 0x0C:02X} A4 00 0C 02 5000") == 0x6882
        assert swof(card, f"{channel | 0x10:02X} A4 00 0C 02 5000") == 0x6884
    finally:
        xchg(card, 0x00, 0x70, 0x80, channel)  # MANAGE CHANNEL close


def test_get_challenge(card) -> None:
    iso = open_iso(card)
    challenges = {iso.get_challenge(8) for _ in range(4)}
    assert len(challenges) == 4 and all(len(c) == 8 for c in challenges)
    assert len(xchg(card, 0x00, 0x84, 0x00, 0x00, le=256)[0]) == 256
    assert swof(card, "00 84 00 00") == 0x6700  # Le absent
    assert swof(card, "00 84 01 00 08") == 0x6A86


@pytest.mark.isolated
def test_change_pin_with_old_and_new(card) -> None:
    iso = open_iso(card)
    assert iso.pin_status() == 0x63C3
    assert sw_of(lambda: iso.change_pin(b"5678", old_pin=b"0000")) == 0x63C2  # a wrong current PIN: a try
    assert iso.pin_status() == 0x63C2
    assert sw_of(lambda: iso.change_pin(b"567", old_pin=b"0000")) == 0x6700  # 7 bytes: below 4 + 4
    assert sw_of(lambda: iso.change_pin(b"56789", old_pin=b"000")) == 0x63C1  # a wrong split costs a try too
    assert sw_of(lambda: iso.change_pin(b"123456789", old_pin=PIN)) == 0x6700  # right PIN, new one 9 bytes
    assert iso.pin_status() == 0x63C3  # the right PIN restored the tries, but verified nothing
    iso.change_pin(b"567890", old_pin=PIN)
    assert iso.pin_status() == 0x63C3  # a change is not a verification
    assert iso.verify(PIN, expected=(0x63C2,)).sw == 0x63C2
    iso.verify(b"567890")
    assert iso.pin_status() == 0x9000


@pytest.mark.isolated
def test_reset_retry_counter_unblocks_with_the_puk(card) -> None:
    iso = open_iso(card)
    for left in (2, 1, 0):
        assert iso.verify(b"0000", expected=(0x63C0 | left,)).sw == 0x63C0 | left
    assert iso.pin_status() == 0x6983
    assert sw_of(lambda: iso.reset_retry_counter(b"87654321")) == 0x63C4  # a wrong PUK: 4 of 5 left
    assert sw_of(lambda: iso.reset_retry_counter(PUK[:7])) == 0x6700
    assert sw_of(lambda: iso.reset_retry_counter(PUK, b"123")) == 0x6700
    assert swof(card, "00 2C 02 01 04 31323334") == 0x6A86  # no other way to authorise a reset
    assert swof(card, "00 2C 01 02 08 3132333435363738") == 0x6A88
    iso.reset_retry_counter(PUK)  # the tries back, the same PIN
    assert iso.pin_status() == 0x63C3
    iso.verify(PIN)
    for left in (2, 1, 0):
        assert iso.verify(b"0000", expected=(0x63C0 | left,)).sw == 0x63C0 | left
    iso.reset_retry_counter(PUK, b"4321")  # the tries back and a new PIN
    assert iso.verify(PIN, expected=(0x63C2,)).sw == 0x63C2
    iso.verify(b"4321")
    for left in (4, 3, 2, 1, 0):  # the right PUK gave its tries back; five wrong ones block it for good
        assert sw_of(lambda: iso.reset_retry_counter(b"87654321")) == 0x63C0 | left
    assert sw_of(lambda: iso.reset_retry_counter(PUK)) == 0x6983


def test_create_file_as_generic_clients_send_it(card) -> None:
    """OpenSC's iso7816_construct_fci: an FCI template 6F with the total size in 81, the descriptor
    byte alone (01 transparent, 38 DF) and the FID, no security attributes."""
    with scratch_df(card) as (iso, df):
        ef, sub = next_fid(), next_fid()
        assert swof(card, f"00 E0 00 00 0D 6F0B 81020020 820101 8302{ef:04X}") == 0x9000
        fcp = iso.select_ef(ef)  # CREATE FILE made it current; its DF is the current DF
        assert (fcp.structure, fcp.size) == (Structure.TRANSPARENT, 0x20)
        iso.select_fid(df)
        assert swof(card, f"00 E0 00 00 0D 6F0B 81020000 820138 8302{sub:04X}") == 0x9000
        assert iso.select_fid(df).children == (ef, sub)
        assert swof(card, "00 E0 00 00 0D 6F0B 81020000 820101 83020E77") == 0x6A80  # an EF of 0 bytes
        assert swof(card, "00 E0 00 00 0D 6E0B 81020010 820101 83020E77") == 0x6A80  # neither 62 nor 6F
