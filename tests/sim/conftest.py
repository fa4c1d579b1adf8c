"""tests/sim: the simulator bridge itself, on its own test applets (host/simbridge/test-applets)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cardsuite.project import Project
from support.bridgecard import BridgeCard


@pytest.fixture
def bridge_card(project: Project) -> Iterator[BridgeCard]:
    card = BridgeCard(project)
    assert card.send(0x10, 0x01) == 0x9000  # a known, committed starting state: every field 1
    yield card
