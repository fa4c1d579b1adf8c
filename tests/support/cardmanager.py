"""The simulated card manager with nothing installed, as the in-process GlobalPlatform tests use it: its
development keys, the card's own Security Domain package and module, an SSD's AID, the echo CAP to load."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cardsuite.gp.client import GlobalPlatform
from cardsuite.gp.scp import KeySet
from cardsuite.keysource import GP_DEVELOPMENT_KEY
from cardsuite.project import Project
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.tooling.cap import read_cap

from support import CARD_RESIDENT, ROOT

DEV = KeySet.single(GP_DEVELOPMENT_KEY)
ECHO = read_cap(ROOT / "tests" / "fixtures" / "caps" / "echo.cap")
APPLET = ECHO.applet_aids[0]
SD_PACKAGE = bytes.fromhex(CARD_RESIDENT[0])  # the card manager's own package ([GPCS] 11.4.2)
SD_MODULE = SD_PACKAGE + b"\x41"  # its Security Domain module
SSD = SD_MODULE + b"\xaa\x01"  # an instance of it the tests install
SCPS = ["scp02", "scp03"]


def empty_card_manager(request: pytest.FixtureRequest, project: Project) -> Iterator[SimulatorTransport]:
    """A fixture body (each test module names it ``card``, with ``params=SCPS``): a fresh in-process card whose
    card manager speaks the parameter's protocol and holds no application."""
    card = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig(request.param))
    card.connect()
    yield card
    card.disconnect()


def isd_session(card: SimulatorTransport) -> GlobalPlatform:
    """The ISD with a secure channel opened under the development keys."""
    gp = GlobalPlatform(card)
    gp.open_secure_channel(DEV)
    return gp
