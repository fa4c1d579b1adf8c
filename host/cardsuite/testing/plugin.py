"""pytest plugin: the `card` fixture over the in-process simulator, the simulator behind vpcd, or a
real reader, with the APDU trace of every failing test attached to its report.

Options (environment fallback in brackets):
  --card sim | vpcd | reader:<name or index>   [CARDSUITE_CARD]  default sim
Markers:
  e2e           also part of the end-to-end subset run over vpcd
  isolated      the test gets a fresh card of its own instead of the module's card
  sim_only      needs the in-process simulator (tearing); skipped on other cards
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from cardsuite.errors import TransportError
from cardsuite.project import Project
from cardsuite.settings import ENV_CARD
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots
from cardsuite.trace import Trace
from cardsuite.transport.base import Transport
from cardsuite.transport.pcsc import PcscTransport

_TRACE_KEY = pytest.StashKey[Trace]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cardsuite", "cardsuite cards")
    group.addoption(
        "--card",
        default=os.environ.get(ENV_CARD, "sim"),
        help="card to test: sim (in-process jCardSim, default), vpcd (simulator behind pcscd/vpcd), "
        f"reader:<name or index> (a real card; never used unless asked) [env {ENV_CARD}]",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end test, also run over vpcd")
    config.addinivalue_line("markers", "isolated: give this test a fresh card of its own")
    config.addinivalue_line("markers", "sim_only: needs the in-process simulator (e.g. tearing)")
    card = config.getoption("--card")
    if not (card in ("sim", "vpcd") or card.startswith("reader:")):
        raise pytest.UsageError(f"--card {card!r}: use sim, vpcd or reader:<name or index>")


def pytest_report_header(config: pytest.Config) -> str:
    return f"cardsuite card: {config.getoption('--card')}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    card = config.getoption("--card")
    if card == "sim":
        return
    skip = pytest.mark.skip(reason=f"needs the in-process simulator, running on --card {card}")
    for item in items:
        if item.get_closest_marker("sim_only"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def project() -> Project:
    return Project.locate()


class _CardFactory:
    """Opens a fresh card of the configured kind; closes what it opened. Over vpcd each open card is
    its own simulator on the lowest free slot (a module's card and an isolated test's card coexist)."""

    def __init__(self, spec: str, project: Project) -> None:
        self.spec = spec
        self.project = project
        self._simulators: dict[int, VpcdSimulator] = {}  # id(transport) -> its simulator

    def open(self) -> Transport:
        if self.spec == "sim":
            transport: Transport = SimulatorTransport(self.project)
        elif self.spec == "vpcd":
            ensure_pcscd()
            used = {s.slot for s in self._simulators.values()}
            slots = [slot for slot in free_slots() if slot not in used]
            if not slots:
                raise TransportError("every vpcd slot already holds a card: stop the other simulators")
            slot = slots[0]
            simulator = VpcdSimulator(self.project, slot=slot).start()
            transport = simulator.transport()
            self._simulators[id(transport)] = simulator
        else:
            transport = PcscTransport(self.spec.split(":", 1)[1])
        try:
            transport.connect()
        except BaseException:
            self.close(transport)  # stops the simulator started for it
            raise
        return transport

    def close(self, transport: Transport) -> None:
        transport.disconnect()
        simulator = self._simulators.pop(id(transport), None)
        if simulator is not None:
            simulator.stop()


@pytest.fixture(scope="session")
def card_factory(request: pytest.FixtureRequest, project: Project) -> _CardFactory:
    return _CardFactory(request.config.getoption("--card"), project)


@pytest.fixture(scope="module")
def module_card(card_factory: _CardFactory) -> Iterator[Transport]:
    transport = card_factory.open()
    yield transport
    card_factory.close(transport)


@pytest.fixture
def card(request: pytest.FixtureRequest, card_factory: _CardFactory) -> Iterator[Transport]:
    """A card for this test: the module's card, or a fresh one for tests marked `isolated`.
    Every exchange is traced; the trace is attached to the report when the test fails."""
    isolated = request.node.get_closest_marker("isolated") is not None
    if isolated and card_factory.spec.startswith("reader:"):
        pytest.skip("a real card cannot be replaced by a fresh one")
    transport = card_factory.open() if isolated else request.getfixturevalue("module_card")
    trace = Trace(limit=500)
    transport.trace = trace
    request.node.stash[_TRACE_KEY] = trace
    try:
        yield transport
    finally:
        transport.trace = None
        if isolated:
            card_factory.close(transport)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    trace = item.stash.get(_TRACE_KEY, None)
    if report.failed and trace is not None and trace.entries:
        report.sections.append(("APDU trace (secrets masked)", trace.format()))
