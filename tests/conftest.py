"""The test session keeps its state (brick guard, issuer and inventory databases) in a folder of its own: set
before any test or subprocess runs, so nothing a test does reaches the real ~/.local/state/cardsuite."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from cardsuite.project import Project
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
