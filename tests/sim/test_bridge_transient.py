"""Transient memory on the bridge (Java Card RE 3.0.5 6.1.1 and 4.2; JC API JCSystem, KeyBuilder, OwnerPIN):
CLEAR_ON_RESET lasts until reset, CLEAR_ON_DESELECT until the applet's context is deselected on its last
channel, transient keys are uninitialised with their event, an OwnerPIN's validation ends with the session."""

from __future__ import annotations

import pytest
from support.bridgecard import JOURNAL_AID, MULTI_AID, REFUSING_AID, BridgeCard, info, manage, select

SET = 0x51  # ChannelApplet: both transient bytes to P1, both transient keys set, the PIN checked


@pytest.fixture
def card(multi_card: BridgeCard) -> BridgeCard:
    return multi_card


def memory(card: BridgeCard, channel: int) -> tuple[int, int, int, int, int]:
    """(CLEAR_ON_DESELECT byte, CLEAR_ON_RESET byte, deselect key set, reset key set, PIN validated)."""
    data = info(card, channel)
    return data[4], data[5], data[6], data[7], data[8]


def set_all(card: BridgeCard, channel: int, value: int) -> None:
    assert card.transmit(bytes([0x80 | channel, SET, value, 0x00]))[1] == 0x9000


def test_reset_clears_every_transient_array_key_and_pin_validation(card: BridgeCard) -> None:
    assert select(card, 1, MULTI_AID) == 0x9000
    set_all(card, 1, 0x5A)
    assert memory(card, 1) == (0x5A, 0x5A, 1, 1, 1)
    card.card.reset()
    assert select(card, 1, MULTI_AID) == 0x9000
    assert memory(card, 1) == (0, 0, 0, 0, 0)


def test_deselect_clears_clear_on_deselect_memory_and_keys_only(card: BridgeCard) -> None:
    assert select(card, 0, MULTI_AID) == 0x9000
    set_all(card, 0, 0x21)
    card.select()  # JournalApplet on channel 0: ChannelApplet deselected (and resets its PIN, as applets do)
    assert select(card, 0, MULTI_AID) == 0x9000
    assert memory(card, 0) == (0, 0x21, 0, 1, 0)


def test_clear_on_deselect_memory_is_the_contexts_while_any_channel_has_it_selected(card: BridgeCard) -> None:
    """Multiselected applets of one package share its CLEAR_ON_DESELECT memory; it is cleared when the last
    of them is deselected, not at each deselection (JCRE 4.2, 4.6)."""
    assert select(card, 1, MULTI_AID) == 0x9000
    set_all(card, 1, 0x33)
    assert select(card, 2, MULTI_AID) == 0x9000
    assert memory(card, 2) == (0x33, 0x33, 1, 1, 1)  # the same instance, the same session
    assert manage(card, 0, 0x80, 0x01) == (b"", 0x9000)
    assert memory(card, 2) == (0x33, 0x33, 1, 1, 1)  # deselect(true) on 1: the context is still active on 2
    assert manage(card, 0, 0x80, 0x02) == (b"", 0x9000)
    assert select(card, 1, MULTI_AID) == 0x9000
    assert memory(card, 1) == (0, 0x33, 0, 1, 0)


def test_another_channels_selection_leaves_a_session_alone(card: BridgeCard) -> None:
    assert select(card, 0, MULTI_AID) == 0x9000
    set_all(card, 0, 0x44)
    assert select(card, 1, JOURNAL_AID) == 0x9000
    assert select(card, 2, REFUSING_AID) == 0x6999  # refused: its select() cleared nothing of the others
    assert memory(card, 0) == (0x44, 0x44, 1, 1, 1)
