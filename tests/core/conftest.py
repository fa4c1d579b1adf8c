"""Fixtures of the core tests (APDU, transports, CLI, traces); the vpcd cards are in ../conftest.py."""

from __future__ import annotations

import pytest
from cardsuite.transport.base import Transport
from support import ECHO_AID


@pytest.fixture
def echo(card: Transport) -> Transport:
    """The card with the echo applet selected."""
    card.select(ECHO_AID)
    return card
