"""Logical channels on the bridge (Java Card RE 3.0.5 chapter 4, ISO 7816-4 5.4.1 and 11.1.2): MANAGE CHANNEL
open and close, the CLA channel bits of both interindustry classes routed to the applet selected on that channel,
SELECT opening a channel, MultiSelectable and its refusal for other applets, getCLAChannel/getAssignedChannel."""

from __future__ import annotations

import pytest
from cardsuite.cla import channel_cla
from support.bridgecard import JOURNAL_AID, MULTI_AID, REFUSING_AID, BridgeCard, Journal, info, manage, select

INFO = 0x50
# ChannelApplet's select/deselect call codes
PLAIN, MULTI_FALSE, MULTI_TRUE = 1, 2, 3


@pytest.fixture
def card(multi_card: BridgeCard) -> BridgeCard:
    return multi_card


def test_manage_channel_open_assigns_the_lowest_free_channel(card: BridgeCard) -> None:
    assert manage(card, 0, 0x00, 0x00, b"\x01") == (b"\x01", 0x9000)
    assert manage(card, 0, 0x00, 0x00, b"\x01") == (b"\x02", 0x9000)
    assert manage(card, 0, 0x80, 0x01) == (b"", 0x9000)
    assert manage(card, 0, 0x00, 0x00, b"\x01") == (b"\x01", 0x9000)  # the closed one is free again


def test_manage_channel_open_of_a_requested_channel(card: BridgeCard) -> None:
    assert manage(card, 0, 0x00, 0x13) == (b"", 0x9000)  # channel 19, the last
    assert manage(card, 0, 0x00, 0x13) == (b"", 0x6A86)  # already open
    assert select(card, 19, MULTI_AID) == 0x9000
    assert info(card, 19)[:2] == bytes([19, 19])


@pytest.mark.parametrize("command, sw", [
    (bytes([0x00, 0x70, 0x40, 0x00]), 0x6A81),  # P1 neither open nor close
    (bytes([0x00, 0x70, 0x00, 0x14]), 0x6A81),  # channel 20 does not exist
    (bytes([0x00, 0x70, 0x00, 0x00]), 0x6C01),  # assigned number without Le 1
    (bytes([0x00, 0x70, 0x00, 0x00, 0x02]), 0x6C01),
    (bytes([0x00, 0x70, 0x00, 0x01, 0x01, 0x00]), 0x6700),  # command data
    (bytes([0x0C, 0x70, 0x00, 0x00, 0x01]), 0x6882),  # secure messaging bits
    (bytes([0x10, 0x70, 0x00, 0x00, 0x01]), 0x6884),  # command chaining
    (bytes([0x01, 0x70, 0x00, 0x00, 0x01]), 0x6881),  # from a closed channel
    (bytes([0x00, 0x70, 0x80, 0x00]), 0x6A81),  # closing the basic channel
    (bytes([0x00, 0x70, 0x80, 0x05]), 0x6200),  # closing a closed channel: a warning
])
def test_bad_manage_channel_commands(card: BridgeCard, command: bytes, sw: int) -> None:
    assert card.transmit(command) == (b"", sw)
    assert card.read().persistent() == Journal.all(0x01)  # the basic channel's applet still answers


@pytest.mark.parametrize("channel", [1, 2, 3, 4, 11, 19])
def test_cla_channel_bits_reach_the_applet_of_that_channel(card: BridgeCard, channel: int) -> None:
    """Both classes' codings (0x0X and 0x4X, and their proprietary mirrors 0x8X/0xCX), seen by the applet as
    getCLAChannel and getAssignedChannel; the basic channel's applet is untouched."""
    assert select(card, channel, MULTI_AID) == 0x9000  # opens the channel (JCRE 4.5.2 step 3)
    assert info(card, channel, proprietary=False)[:2] == bytes([channel, channel])
    assert info(card, channel, proprietary=True)[:2] == bytes([channel, channel])
    assert card.read().persistent() == Journal.all(0x01)  # JournalApplet on channel 0 still selected


def test_a_command_on_a_channel_not_open_is_refused(card: BridgeCard) -> None:
    assert card.transmit(bytes([channel_cla(2, True), INFO, 0, 0, 0])) == (b"", 0x6881)
    assert card.transmit(bytes([channel_cla(7, True), INFO, 0, 0, 0])) == (b"", 0x6881)
    assert card.transmit(bytes([0xFF, INFO, 0, 0, 0])) == (b"", 0x6E00)  # ISO 7816-4: CLA FF is invalid


def test_manage_channel_from_another_channel_selects_its_applet_there(card: BridgeCard) -> None:
    assert select(card, 1, MULTI_AID) == 0x9000
    assert info(card, 1)[2] == PLAIN  # its context was not active: Applet.select()
    assert manage(card, 1, 0x00, 0x00, b"\x01") == (b"\x02", 0x9000)
    assert info(card, 2)[:3] == bytes([2, 2, MULTI_TRUE])  # the same instance, already active on channel 1
    assert manage(card, 0, 0x80, 0x02) == (b"", 0x9000)
    assert info(card, 1)[3] == MULTI_TRUE  # deselected on 2 while still active on 1
    assert manage(card, 0, 0x80, 0x01) == (b"", 0x9000)
    assert card.transmit(bytes([channel_cla(1, True), INFO, 0, 0, 0])) == (b"", 0x6881)


def test_a_non_multiselectable_applet_is_refused_on_a_second_channel(card: BridgeCard) -> None:
    """JCRE 4.5.2 step 5: 6985; the channel stays open and its applet stays selected."""
    assert select(card, 1, JOURNAL_AID) == 0x6985  # selected on channel 0 already
    assert select(card, 1, MULTI_AID) == 0x9000
    assert select(card, 1, JOURNAL_AID) == 0x6985
    assert info(card, 1)[:2] == bytes([1, 1])  # still ChannelApplet there
    assert card.read().persistent() == Journal.all(0x01)  # and JournalApplet on channel 0


def test_manage_channel_open_refuses_a_non_multiselectable_origin_applet(card: BridgeCard) -> None:
    """JCRE 4.5.1 step 8: opened from a channel whose applet is not multiselectable, the new channel would get
    that applet a second time: 6985 and the channel is not opened."""
    assert select(card, 0, MULTI_AID) == 0x9000  # JournalApplet deselected on channel 0
    assert select(card, 1, JOURNAL_AID) == 0x9000
    assert manage(card, 1, 0x00, 0x00, b"\x01") == (b"", 0x6985)
    assert card.transmit(bytes([channel_cla(2, True), INFO, 0, 0, 0])) == (b"", 0x6881)
    assert manage(card, 0, 0x00, 0x00, b"\x01") == (b"\x02", 0x9000)  # from 0: no applet selected on 2
    assert card.transmit(bytes([channel_cla(2, True), INFO, 0, 0, 0])) == (b"", 0x6986)  # as channel 0 unselected


def test_select_on_a_new_channel_keeps_the_other_channels_session(card: BridgeCard) -> None:
    """The basic channel's applet keeps its CLEAR_ON_DESELECT memory when another channel selects an applet of
    another package (jCardSim alone deselects it and clears every such array)."""
    assert card.send(0x30, 0x0A) == 0x9000  # JournalApplet's transient arrays
    assert select(card, 1, MULTI_AID) == 0x9000
    assert card.read().raw[38:] == bytes([0x0A]) * 16


def test_multiselectable_select_and_deselect_calls(card: BridgeCard) -> None:
    """JCRE 4.2: MultiSelectable.select/deselect(boolean) while the context is active on another channel (the
    flag says whether it is this very instance), Applet.select/deselect otherwise."""
    assert select(card, 1, MULTI_AID) == 0x9000
    assert select(card, 2, MULTI_AID) == 0x9000
    assert info(card, 2)[2] == MULTI_TRUE
    assert select(card, 3, REFUSING_AID) == 0x6999  # another instance of the package: select(false), refused
    assert card.transmit(bytes([channel_cla(3, True), INFO, 0, 0, 0])) == (b"", 0x6986)  # nothing selected on 3
    assert select(card, 2, JOURNAL_AID) == 0x6985
    assert info(card, 2)[2] == MULTI_TRUE  # still selected on 2
    assert manage(card, 0, 0x80, 0x02) == (b"", 0x9000)
    assert info(card, 1)[3] == MULTI_TRUE  # deselect(true): still active on channel 1
    assert manage(card, 0, 0x80, 0x01) == (b"", 0x9000)
    assert select(card, 1, MULTI_AID) == 0x9000
    assert info(card, 1)[2:4] == bytes([PLAIN, PLAIN])  # the last one out: Applet.deselect(); then select()
