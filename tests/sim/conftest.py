"""tests/sim: the simulator bridge itself, on its own test applets (host/simbridge/test-applets)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cardsuite.project import Project
from support.bridgecard import BridgeCard, install_channel_applets


@pytest.fixture
def bridge_card(project: Project) -> Iterator[BridgeCard]:
    card = BridgeCard(project)
    assert card.send(0x10, 0x01) == 0x9000  # a known, committed starting state: every field 1
    yield card


@pytest.fixture
def multi_card(bridge_card: BridgeCard) -> BridgeCard:
    """JournalApplet (not multiselectable, package cardsuite.simtest) selected on channel 0, and ChannelApplet
    (MultiSelectable, a package of its own) installed twice, the second refusing selection."""
    return install_channel_applets(bridge_card)
