"""Fixtures of the core tests (APDU, transports, CLI, traces)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots
from cardsuite.transport.base import Transport
from support import ECHO_AID


@pytest.fixture
def echo(card: Transport) -> Transport:
    """The card with the echo applet selected."""
    card.select(ECHO_AID)
    return card


def _attached_simulator(project) -> Iterator[VpcdSimulator]:
    """A simulated card behind the first free vpcd slot (pcscd started if needed); skips when none is free."""
    ensure_pcscd()
    slots = free_slots()
    if not slots:
        pytest.skip("every vpcd slot already holds a card")
    with VpcdSimulator(project, slot=slots[0]) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def reader_card(project) -> Iterator[VpcdSimulator]:
    """One card behind vpcd for the module's tests, its state kept between them."""
    yield from _attached_simulator(project)


@pytest.fixture
def vpcd_card(project) -> Iterator[VpcdSimulator]:
    """A card behind vpcd of the test's own (tests that stop or kill the bridge)."""
    yield from _attached_simulator(project)
