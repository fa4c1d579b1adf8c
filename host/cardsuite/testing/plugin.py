"""pytest plugin: the `card` fixture over the in-process simulator, the simulator behind vpcd, or a
real reader, with the APDU trace of every failing test attached to its report.

Options (group "cardsuite"; a command-line value overrides the environment, in brackets):
  --cardsuite-card sim | vpcd | reader:<name or index> | replay:FILE   [CARDSUITE_CARD]  default sim
                   (replay:FILE: every card is a simulated card that first plays the recorded session FILE and
                   fails at the first response that differs)
                   (`--card` is the same option, kept for existing command lines)
Markers (checked at collection: a marker no plugin registered, e.g. a misspelt `sim_onyl`, or one of ours
given arguments, is a usage error rather than a test that silently runs everywhere):
  e2e           also part of the end-to-end subset run over vpcd
  isolated      the test gets a fresh card of its own instead of the module's card
  sim_only      needs the in-process simulator (tearing); skipped on other cards
Fixtures:
  card                 the card for this test (the module's, or a fresh one when `isolated`), traced
  module_card, card_factory, project
  tear_at_every_write  a `TearAtEveryWrite` on `card`: sends a command torn at each of its persistent writes,
                       resets the card and calls the test's check after each tear (sim only: skips elsewhere)
The report header records the provenance of a run: the card, the jCardSim jar, whether the Oracle SDK
(CAP files) is configured.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardsuite.errors import ConfigurationError, TransportError
from cardsuite.project import Project
from cardsuite.settings import ENV_CARD
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.sim.targets import REPLAY, ReplayTransport
from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots
from cardsuite.testing.tearing import TearAtEveryWrite
from cardsuite.tooling.toolchain import locate_cap_toolchain
from cardsuite.trace import Trace
from cardsuite.transport.base import Transport
from cardsuite.transport.pcsc import PcscTransport

_TRACE_KEY = pytest.StashKey[Trace]()
CARD_OPTION = "cardsuite_card"  # the dest of --cardsuite-card and its alias --card
MARKERS = {
    "e2e": "end-to-end test, also run over vpcd",
    "isolated": "give this test a fresh card of its own",
    "sim_only": "needs the in-process simulator (e.g. tearing)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cardsuite", "cardsuite cards")
    group.addoption(
        "--cardsuite-card", "--card",
        dest=CARD_OPTION,
        default=os.environ.get(ENV_CARD, "sim"),
        help="card to test: sim (in-process jCardSim, default), vpcd (simulator behind pcscd/vpcd), "
        f"reader:<name or index> (a real card; never used unless asked) [env {ENV_CARD}]",
    )


def card_spec(config: pytest.Config) -> str:
    return config.getoption(CARD_OPTION)


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    card = card_spec(config)
    if not (card in ("sim", "vpcd") or card.startswith(("reader:", REPLAY))):
        raise pytest.UsageError(f"--cardsuite-card {card!r}: use sim, vpcd, reader:<name or index> or replay:FILE")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Provenance: what the results were obtained on, so a report read later says which card and which
    simulator (the jCardSim jar the bridge runs on) and whether the CAP-file tests could run."""
    try:
        project = Project.locate()
        simulator = project.jcardsim_jar().stem
    except ConfigurationError as error:
        return [f"cardsuite card: {card_spec(config)}", f"cardsuite simulator: none ({error})"]
    bridge = "built" if project.bridge_classes.is_dir() else "not built"
    toolchain, _ = locate_cap_toolchain(project)
    sdk = f"Oracle SDK {toolchain.kit.path.name}" if toolchain is not None else "no Oracle SDK (CAP tests skip)"
    return [f"cardsuite card: {card_spec(config)}", f"cardsuite simulator: {simulator}, bridge {bridge}; {sdk}"]


def _check_markers(config: pytest.Config, items: list[pytest.Item]) -> None:
    """An unregistered marker is almost always a misspelt one of ours: fail the run instead of running it."""
    registered = {line.split(":", 1)[0].split("(", 1)[0].strip() for line in config.getini("markers")}
    wrong = []
    for item in items:
        for mark in item.iter_markers():
            if mark.name not in registered:
                wrong.append(f"{item.nodeid}: unknown marker {mark.name!r} (cardsuite's: {', '.join(MARKERS)})")
            elif mark.name in MARKERS and (mark.args or mark.kwargs):
                wrong.append(f"{item.nodeid}: marker {mark.name!r} takes no arguments")
    if wrong:
        raise pytest.UsageError("\n".join(sorted(set(wrong))))


# pytest-xdist (`pytest -n auto`): every worker is a process of its own with its own in-process cards (its own
# JVM). The tests that use pcscd/vpcd share its two slots: a worker holds one lock of the run (a file lock) from
# the first vpcd test of a module to the end of its last, so they run one module at a time, as in a serial run
# (xdist's own grouping, --dist loadgroup, did not group with pytest 9 here).
_VPCD_NAMES = ("VpcdSimulator", "ensure_pcscd", "free_slots", "PcscTransport")
_VPCD_LOCK = pytest.StashKey[object]()


def _uses_vpcd(item: pytest.Item, card: str) -> bool:
    """Whether a test may touch a vpcd slot: every test on --card vpcd, else a test with a vpcd fixture or in a
    module that starts simulators behind vpcd or opens PC/SC readers."""
    if card == "vpcd" or card.startswith("reader:"):
        return True
    if any("vpcd" in name or name == "reader_card" for name in getattr(item, "fixturenames", ())):
        return True
    module = getattr(item, "module", None)
    return module is not None and any(hasattr(module, name) for name in _VPCD_NAMES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _check_markers(config, items)
    card = card_spec(config)
    if card == "sim" or card.startswith(REPLAY):  # a replayed card is a simulated one
        return
    skip = pytest.mark.skip(reason=f"needs the in-process simulator, running on --cardsuite-card {card}")
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
        elif self.spec.startswith(REPLAY):  # a simulated card after the recorded session: it must answer alike
            transport = ReplayTransport(Path(self.spec[len(REPLAY):]), self.project)
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
    return _CardFactory(card_spec(request.config), project)


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


@pytest.fixture
def tear_at_every_write(card: Transport) -> TearAtEveryWrite:
    """Tearing needs the in-process simulator: elsewhere the test skips (mark it `sim_only` too, so that
    it is skipped at collection and not after its card was opened)."""
    if not isinstance(card, SimulatorTransport):
        pytest.skip("tearing needs the in-process simulator")
    return TearAtEveryWrite(card)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Under xdist, the vpcd lock around a module's vpcd tests: taken at its first, released after its last on
    this worker, once its module fixtures (and the slots they hold) are torn down."""
    worker = getattr(item.config, "workerinput", None)
    if worker is None or not _uses_vpcd(item, card_spec(item.config)):
        yield
        return
    held = item.config.stash.get(_VPCD_LOCK, None)
    if held is None:
        import fcntl
        import tempfile

        path = os.path.join(tempfile.gettempdir(), f"cardsuite-vpcd-{worker['testrunuid']}.lock")
        held = open(path, "w")  # noqa: SIM115 - held across tests, closed below
        fcntl.flock(held, fcntl.LOCK_EX)
        item.config.stash[_VPCD_LOCK] = held
    try:
        yield
    finally:
        card = card_spec(item.config)
        if nextitem is None or nextitem.module is not item.module or not _uses_vpcd(nextitem, card):
            del item.config.stash[_VPCD_LOCK]
            held.close()  # closing the file releases the lock


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    trace = item.stash.get(_TRACE_KEY, None)
    if report.failed and trace is not None and trace.entries:
        report.sections.append(("APDU trace (secrets masked)", trace.format()))
