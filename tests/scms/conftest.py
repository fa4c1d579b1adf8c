"""Fixtures of the SCMS tests: a new SCMS folder (SQLite, a SoftHSM2 token in it, the development keys as the
transport keys simulated cards arrive with) and empty simulated cards known to its CMS."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cardsuite.gp.client import GlobalPlatform
from cardsuite.project import Project
from cardsuite.scms.system import System, init_system
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport

ADMIN_PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def scms_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """One SCMS (and token) per test session: SoftHSM2 reads SOFTHSM2_CONF once per process, at the first
    C_Initialize, so a second token folder in the same process would not be seen."""
    saved = os.environ.pop("SOFTHSM2_CONF", None)
    system = init_system(tmp_path_factory.mktemp("scms") / "scms", admin="admin", password=ADMIN_PASSWORD,
                         development_transport_keys=True)
    yield system
    if saved is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = saved


@pytest.fixture
def scms(scms_folder: System, tmp_path: Path) -> System:
    """The session's SCMS with a database of the test's own (the token is shared)."""
    system = dataclasses.replace(scms_folder, database_url=f"sqlite:///{tmp_path / 'scms.db'}",
                                 inventory_url=f"sqlite:///{tmp_path / 'inventory.db'}")
    db = system.database()
    db.create()
    db.close()
    return system


@pytest.fixture
def card(project: Project) -> Iterator[SimulatorTransport]:
    transport = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig("scp03"))
    transport.connect()
    yield transport
    transport.disconnect()


def card_identity(transport: SimulatorTransport) -> str:
    gp = GlobalPlatform(transport)
    gp.select()
    return gp.cplc().identity
