"""Files shared between applets: the fsclient applet works on the ISO applet's DF 6000 through
cardsuite.isocmd.SharedFiles, under the owner's access conditions and PIN state."""

from __future__ import annotations

import pytest
from cardsuite.apdu import StatusError
from cardsuite.fs.client import IsoFileSystem, Structure
from support import FSCLIENT_AID, ISO_AID
from support.fsmodel import PIN, raw, swof, xchg

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(card) -> IsoFileSystem:
    fs = IsoFileSystem(card)
    fs.select_application(ISO_AID)
    assert swof(card, "00 20 FF 01") == 0x9000  # start without the PIN
    fs.select_application(FSCLIENT_AID)
    return fs


def owner(card) -> IsoFileSystem:
    fs = IsoFileSystem(card)
    fs.select_application(ISO_AID)
    return fs


def test_the_shared_df_is_the_clients_mf(card, client) -> None:
    mf = client.select_mf()
    assert (mf.fid, mf.structure, mf.df_name, mf.children) == (
        0x6000, Structure.DF, bytes.fromhex("F063617264465302"), (0x6001, 0x6002))
    assert xchg(card, 0x00, 0xA4, 0x00, 0x04, le=256)[0] == mf.raw  # no data: the MF too
    assert [node.fcp.fid for node in client.tree().children] == [0x6001, 0x6002]


def test_files_outside_the_shared_df_are_not_found(card, client) -> None:
    assert swof(card, "00 A4 00 0C 02 5000") == 0x6A82
    assert swof(card, "00 A4 08 0C 04 5000 5001") == 0x6A82
    assert swof(card, "00 A4 03 0C") == 0x6A82  # no parent above the view's root
    assert swof(card, "00 A4 04 0C 08 F063617264465301") == 0x6A82  # DF 5000's name


def test_read_and_append_allowed_update_refused_without_the_pin(card, client) -> None:
    record = bytes(range(16))
    client.append_record(record, sfi=2)
    assert client.read_record(1, sfi=2) == record
    seen = client.read_binary(0, 32, sfi=1)
    owner_fs = owner(card)
    owner_fs.select_path([0x3F00, 0x6000])
    assert owner_fs.read_record(1, sfi=2) == record  # the owner holds the client's record
    assert owner_fs.read_binary(0, 32, sfi=1) == seen
    card.select(FSCLIENT_AID)
    assert swof(card, "00 D6 81 00 01 AA") == 0x6982  # update 6001 needs the owner's PIN
    assert swof(card, "00 DC 01 14 10 " + "00" * 16) == 0x6982


def test_the_owners_pin_opens_the_clients_updates(card, client) -> None:
    owner_fs = owner(card)
    owner_fs.verify(PIN)  # verified on the owner; the state lasts until reset, not deselect
    client.select_application(FSCLIENT_AID)
    client.update_binary(0, b"shared!", sfi=1)
    assert client.read_binary(0, 7, sfi=1) == b"shared!"
    owner_fs.select_application(ISO_AID)
    owner_fs.select_path([0x3F00, 0x6000, 0x6001])
    assert owner_fs.read_binary(0, 7) == b"shared!"  # the owner sees the client's write
    owner_fs.update_binary(0, b"OWNER")
    client.select_application(FSCLIENT_AID)
    assert client.read_binary(0, 7, sfi=1) == b"OWNERd!"  # and the client the owner's


def test_the_views_root_cannot_be_deleted_and_creating_needs_the_pin(card, client) -> None:
    owner(card).verify(PIN)
    card.select(FSCLIENT_AID)
    client.select_mf()
    assert swof(card, "00 E4 00 00") == 0x6985
    owner(card).select_application(ISO_AID)
    assert swof(card, "00 20 FF 01") == 0x9000
    card.select(FSCLIENT_AID)
    client.select_mf()
    assert swof(card, "00 E0 00 00 0E 620C 80020004 82020141 83026003") == 0x6982


def test_client_errors_are_the_owners(card, client) -> None:
    assert swof(card, "00 B0 00 00 01") == 0x6986
    assert swof(card, "00 CA 00 00 00") == 0x6D00  # not a file command: the client's own answer
    assert swof(card, "80 B0 00 00 01") == 0x6E00
    with pytest.raises(StatusError) as caught:
        client.read_record(9, sfi=2)
    assert caught.value.sw == 0x6A83
    assert raw(card, "00 B0 83 00 01")[1] == 0x6A82
