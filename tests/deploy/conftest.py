"""Fixtures of the deploy tests: empty simulated cards (a card manager with the development keys, no applets),
what a loading station starts from."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from cardsuite.project import Project
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport


@pytest.fixture
def empty_cards(project: Project) -> Iterator[Callable[[], SimulatorTransport]]:
    """Opens as many empty in-process cards as the test asks for; all are closed at its end."""
    opened: list[SimulatorTransport] = []

    def open_one() -> SimulatorTransport:
        transport = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig("scp03"))
        transport.connect()
        opened.append(transport)
        return transport

    yield open_one
    for transport in opened:
        transport.disconnect()


@pytest.fixture
def empty_card(empty_cards: Callable[[], SimulatorTransport]) -> SimulatorTransport:
    return empty_cards()
