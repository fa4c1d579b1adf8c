"""The test session keeps its state (brick guard, issuer and inventory databases) in a folder of its own: set
before any test or subprocess runs, so nothing a test does reaches the real ~/.local/state/cardsuite.
Also the simulated cards behind vpcd for tests that drive a PC/SC reader themselves (the CLI, OpenSC)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from cardsuite.project import Project
from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots
from cardsuite.wallet.card import manifest_transport_keys
from cardsuite.wallet.sm import IssuerKeys

# pytester: tests/core/test_plugin.py runs the plugin in pytest sessions of its own; support.postgres: the
# session's PostgreSQL server (postgres_url), for the inventory's and the SCMS's tests
pytest_plugins = ["pytester", "support.postgres"]

_STATE = tempfile.mkdtemp(prefix="cardsuite-test-state-")
os.environ["CARDSUITE_STATE"] = _STATE  # at import: before the plugin's fixtures and every test's subprocesses
for _name in ("CARDSUITE_GP_GUARD", "CARDSUITE_DB", "CARDSUITE_INVENTORY"):
    os.environ.pop(_name, None)  # an operator's own paths must not leak into the tests either


def pytest_unconfigure() -> None:
    shutil.rmtree(_STATE, ignore_errors=True)


@pytest.fixture(scope="session")
def transport_keys(project: Project) -> IssuerKeys:
    """The wallet's transport keys from the manifest's install parameters: what PERSONALISE opens with."""
    return manifest_transport_keys(project.manifest)


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
