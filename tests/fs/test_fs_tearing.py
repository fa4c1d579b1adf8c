"""Writes torn by a card reset in the middle: at every persistent write a command makes, power is
cut (the plugin's `tear_at_every_write`), the card is reset, and the file must hold its old
content, whole; once the tear point lies beyond the command's last write, the new content."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.fs.client import IsoFileSystem, Structure, encode_fcp
from cardsuite.testing.tearing import TearAtEveryWrite
from support import BASELINE_AIDS, ISO_AID, PAPER_AIDS
from support.fsmodel import ALWAYS5, PIN, next_fid

pytestmark = [pytest.mark.sim_only, pytest.mark.isolated]

State = Callable[[IsoFileSystem], object]


def reopen(card, path: list[int]) -> IsoFileSystem:
    fs = IsoFileSystem(card)
    fs.select_application(ISO_AID)
    fs.select_path(path)
    return fs


def tear_everywhere(tear: TearAtEveryWrite, path: list[int], command: CommandAPDU, state: State) -> int:
    """Sends ``command`` torn at its 1st, 2nd, … persistent write until it completes; after each
    tear the state must be the old one. Returns how many tear points the command had."""
    card = tear.card
    old = state(reopen(card, path))
    opened: list[IsoFileSystem] = []

    def torn(point: int) -> None:
        assert state(reopen(card, path)) == old, f"torn at write {point}: the old content is gone"

    done = tear(lambda: card.exchange(command), prepare=lambda: opened.append(reopen(card, path)), after_tear=torn)
    assert done.result.sw == 0x9000
    assert card.persistent_write_count() == done.torn
    assert state(opened[-1]) != old
    return done.torn


def make_df(card, *efs: bytes) -> int:
    fs = IsoFileSystem(card)
    fs.select_application(ISO_AID)
    fs.verify(PIN)
    fid = next_fid()
    fs.select_mf()
    fs.create_file(encode_fcp(fid, Structure.DF, access=ALWAYS5))
    for fcp in efs:
        fs.select_path([0x3F00, fid])
        fs.create_file(fcp)
    return fid


def test_update_binary_torn_keeps_the_old_bytes(card, tear_at_every_write: TearAtEveryWrite) -> None:
    df = make_df(card, encode_fcp(0x0101, Structure.TRANSPARENT, size=200, access=ALWAYS5))
    path = [0x3F00, df, 0x0101]
    reopen(card, path).update_binary(0, b"\x11" * 200)
    points = tear_everywhere(tear_at_every_write, path, CommandAPDU(0x00, 0xD6, 0x00, 0x00, b"\x22" * 200),
                             lambda fs: fs.read_binary(0, 200))
    assert points >= 1
    assert reopen(card, path).read_binary(0, 200) == b"\x22" * 200


def test_erase_binary_torn_keeps_the_old_bytes(card, tear_at_every_write: TearAtEveryWrite) -> None:
    df = make_df(card, encode_fcp(0x0101, Structure.TRANSPARENT, size=100, access=ALWAYS5))
    path = [0x3F00, df, 0x0101]
    reopen(card, path).update_binary(0, b"\x33" * 100)
    tear_everywhere(tear_at_every_write, path, CommandAPDU(0x00, 0x0E, 0x00, 0x0A), lambda fs: fs.read_binary(0, 100))
    assert reopen(card, path).read_binary(0, 100) == b"\x33" * 10 + bytes(90)


def test_cyclic_append_torn_keeps_the_ring(card, tear_at_every_write: TearAtEveryWrite) -> None:
    df = make_df(card, encode_fcp(0x0102, Structure.CYCLIC, record_size=4, records=3, access=ALWAYS5))
    path = [0x3F00, df, 0x0102]
    fs = reopen(card, path)
    for i in range(4):  # full, wrapped once
        fs.append_record(bytes([i]) * 4)
    points = tear_everywhere(tear_at_every_write, path, CommandAPDU(0x00, 0xE2, 0x00, 0x00, b"\xAA" * 4),
                             lambda fs: fs.read_all_records())
    assert points >= 2  # the record and the ring head at least
    assert reopen(card, path).read_all_records() == [b"\xAA" * 4, b"\x03" * 4, b"\x02" * 4]


def test_variable_update_that_moves_records_torn(card, tear_at_every_write: TearAtEveryWrite) -> None:
    df = make_df(card, encode_fcp(0x0103, Structure.LINEAR_VARIABLE, size=60, record_size=20, access=ALWAYS5))
    path = [0x3F00, df, 0x0103]
    fs = reopen(card, path)
    for record in (b"first", b"second record", b"third", b"4"):
        fs.append_record(record)
    points = tear_everywhere(tear_at_every_write, path, CommandAPDU(0x00, 0xDC, 0x02, 0x04, b"2nd"),
                             lambda fs: fs.read_all_records())
    assert points >= 3  # the moved bytes, the length byte, the used count
    assert reopen(card, path).read_all_records() == [b"first", b"2nd", b"third", b"4"]


def test_variable_append_torn(card, tear_at_every_write: TearAtEveryWrite) -> None:
    df = make_df(card, encode_fcp(0x0103, Structure.LINEAR_VARIABLE, size=60, record_size=20, access=ALWAYS5))
    path = [0x3F00, df, 0x0103]
    reopen(card, path).append_record(b"one")
    tear_everywhere(tear_at_every_write, path, CommandAPDU(0x00, 0xE2, 0x00, 0x00, b"two"),
                    lambda fs: fs.read_all_records())
    assert reopen(card, path).read_all_records() == [b"one", b"two"]


def test_create_and_delete_file_torn(card, tear_at_every_write: TearAtEveryWrite) -> None:
    df = make_df(card, encode_fcp(0x0104, Structure.TRANSPARENT, size=8, access=ALWAYS5))
    path = [0x3F00, df]

    def children(fs: IsoFileSystem):
        return fs.select_path(path).children

    create = CommandAPDU(0x00, 0xE0, 0x00, 0x00, encode_fcp(0x0105, Structure.LINEAR_FIXED, record_size=8,
                                                            records=2, access=ALWAYS5))
    assert tear_everywhere(tear_at_every_write, path, create, children) >= 2
    assert children(reopen(card, path)) == (0x0104, 0x0105)
    tear_everywhere(tear_at_every_write, path, CommandAPDU(0x00, 0xE4, 0x00, 0x00, b"\x01\x04"), children)
    assert children(reopen(card, path)) == (0x0105,)


@pytest.mark.parametrize("aid", [PAPER_AIDS["cyclic"], BASELINE_AIDS["cyclic"]], ids=bytes.hex)
def test_paper_cyclic_append_torn(card, tear_at_every_write: TearAtEveryWrite, aid: bytes) -> None:
    """The paper's cyclic applet, with and without the library: an append is atomic too."""
    card.select(aid)
    for i in range(6):
        card.send(CommandAPDU(0x00, 0x25, 0x00, 0x00, bytes([i]) * 32))

    def records() -> list[bytes]:
        card.select(aid)
        return [card.exchange(CommandAPDU(0x00, 0x24, n, 0x00, le=32)).data for n in range(1, 6)]

    old = records()

    def torn(point: int) -> None:
        assert records() == old, f"torn at write {point}"

    done = tear_at_every_write(lambda: card.exchange(CommandAPDU(0x00, 0x25, 0x00, 0x00, b"\xEE" * 32)),
                               prepare=lambda: card.select(aid), after_tear=torn)
    assert done.torn >= 2
    assert records() == [b"\xEE" * 32, *old[:4]]
