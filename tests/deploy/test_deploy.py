"""`cardsuite deploy` ([P000] post-issuance flow) onto an empty simulated card with the card manager:
the whole suite profile from nothing, in dependency order, with the wallet personalised; a second run
changes nothing; a run stopped part-way (between steps, or by power lost in the middle of the wallet's
personalisation) is finished by running it again; the inventory holds the card, its contents and every
event after each; --plan reads the card and changes nothing; bad profiles are one-line errors.
CAP files come from build/cap or, without the Oracle SDK, from tests/fixtures/caps."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cardsuite.cli.main import main
from cardsuite.deploy.deployer import Deployer, DeployInterrupted, DeployOptions, DeployResult, Step, render_plan
from cardsuite.deploy.inventory import Inventory
from cardsuite.deploy.profiles import load_card_profile
from cardsuite.errors import CardTornError
from cardsuite.gp.client import GlobalPlatform, GPError
from cardsuite.gp.guard import BrickGuard
from cardsuite.gp.keys import development_keys
from cardsuite.project import Project
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots
from cardsuite.transport.base import Transport
from cardsuite.wallet.card import INS_PERSONALISE, WalletClient, WalletLifeCycle
from cardsuite.wallet.issuer import Issuer, IssuerSecret
from cardsuite.wallet.merchant import Merchant, pay_with_card
from cardsuite.wallet.store import WalletStore
from support import (
    CARD_RESIDENT,
    DEPLOY_ENV,
    PIN,
    PUK,
    ROOT,
    SUITE,
    SUITE_INSTANCES,
    SUITE_PACKAGES,
    WALLET_AID,
    managed_load_files,
    resident_load_files,
)

h = bytes.fromhex


@dataclass
class Station:
    """A loading station: the inventory, the issuer's database, the brick guard."""

    project: Project
    tmp: Path
    inventory: Inventory

    def deploy(self, transport: Transport, **options: object) -> DeployResult:
        opts = DeployOptions(wallet_db=self.tmp / "wallet.db", env=DEPLOY_ENV, **options)  # type: ignore[arg-type]
        profile = load_card_profile(SUITE)
        return Deployer(self.project, profile, transport, self.inventory, BrickGuard(self.tmp / "guard.db"),
                        options=opts).run()


@pytest.fixture
def station(project: Project, tmp_path: Path) -> Iterator[Station]:
    with Inventory(f"sqlite:///{tmp_path / 'inventory.db'}", station="test-station") as inventory:
        yield Station(project, tmp_path, inventory)


def _contents(transport: Transport) -> tuple[list[str], list[str]]:
    """The load files the deploy manages and the applications; the card's own load files are checked apart."""
    gp = GlobalPlatform(transport)
    gp.open_secure_channel(development_keys().keys)
    registry = gp.registry()
    aids = [f.aid for f in registry.load_files]
    assert resident_load_files(aids) == CARD_RESIDENT  # still there: a deploy leaves the card's own alone
    return managed_load_files(aids), sorted(a.aid.hex().upper() for a in registry.applications)


def _actions(inventory: Inventory, card: str, outcome: str = "ok") -> list[tuple[str, str]]:
    return [(e.action, (e.target or "").split()[0]) for e in inventory.events(card) if e.outcome == outcome]


@pytest.fixture(params=["in-process", "vpcd"])
def any_empty_card(request: pytest.FixtureRequest, project: Project, empty_cards) -> Iterator[Transport]:
    if request.param == "in-process":
        yield empty_cards()
        return
    ensure_pcscd()
    slots = free_slots()
    if not slots:
        pytest.skip("every vpcd slot already holds a card")
    with VpcdSimulator(project, slot=slots[0], applets=[], card_manager=CardManagerConfig("scp03")) as simulator:
        transport = simulator.transport()
        transport.connect()
        yield transport
        transport.disconnect()


@pytest.mark.e2e
def test_deploy_from_empty_then_again_changes_nothing(station: Station, any_empty_card: Transport) -> None:
    progress: list[tuple[str, int, int]] = []
    first = station.deploy(any_empty_card, progress=lambda name, done, total: progress.append((name, done, total)))
    assert [(s.action, s.name) for s in first.performed] == [
        ("load", "isofs"), ("load", "isocmd"), ("load", "isoapplet"), ("load", "wallet"),
        ("load", "paper_transparent"), ("load", "paper_record"), ("load", "paper_cyclic"),
        ("install", "isoapplet"), ("install", "wallet"),
        ("install", "paper_transparent"), ("install", "paper_record"), ("install", "paper_cyclic"),
        ("personalise", "wallet")]
    assert _contents(any_empty_card) == (SUITE_PACKAGES, SUITE_INSTANCES)
    loaded = [name for name, done, total in progress if done == total]
    assert loaded == ["isofs", "isocmd", "isoapplet", "wallet", "paper_transparent", "paper_record", "paper_cyclic"]

    # the inventory: the card by its CPLC identity, what is on it, every step
    card = first.plan.card
    assert card.startswith("cplc:")
    [record] = station.inventory.cards()
    assert (record.card, record.card_type, record.life_cycle, record.profile) == (card, "simulated", "OP_READY",
                                                                                   "sim-suite")
    assert record.cplc is not None and len(record.cplc) == 84 and record.station == "test-station"
    contents = {(c.kind, c.aid): c.state for c in station.inventory.contents(card)}
    packages = [h(aid) for kind, aid in contents if kind == "PKG"]  # the inventory records what the card holds
    assert (managed_load_files(packages), resident_load_files(packages)) == (SUITE_PACKAGES, CARD_RESIDENT)
    assert {aid for kind, aid in contents if kind == "APP"} == set(SUITE_INSTANCES)
    steps = [(s.action, s.name) for s in first.performed]
    assert _actions(station.inventory, card)[1:] == steps + [("deploy", "sim-suite")]  # after "seen"

    # again: nothing loaded, installed or personalised twice
    events_before = len(station.inventory.events(card))
    second = station.deploy(any_empty_card)
    assert second.performed == [] and all(s.done for s in second.plan.steps)
    assert _contents(any_empty_card) == (SUITE_PACKAGES, SUITE_INSTANCES)
    new = station.inventory.events(card)[events_before:]
    assert [(e.action, e.outcome) for e in new] == [("seen", "ok"), ("deploy", "started"), ("deploy", "ok")]
    assert len(station.inventory.cards()) == 1


def test_the_personalised_wallet_answers_and_pays(station: Station, empty_card: SimulatorTransport) -> None:
    station.deploy(empty_card)
    client = WalletClient(empty_card, WALLET_AID)
    client.select()
    status = client.status()
    assert status.state == WalletLifeCycle.ACTIVE and status.pin_tries > 0  # personalised and activated
    with WalletStore(station.tmp / "wallet.db") as registry:
        issuer = Issuer(registry, IssuerSecret.development(), "940001")
        [account] = registry.accounts()
        assert account.holder == "Hong Gildong"
        issuer.enrol(client, account.id, evidence="passport checked at the test station", pin=PIN)
        issuer.credit(client, account.id, 20_000, "TOPUP1")
        merchant = Merchant(registry, "SHOP0001", {issuer.iin: issuer})
        request = merchant.request_payment(4_500, "1 x Americano")
        receipt = merchant.complete(pay_with_card(client, request, PIN))
    assert receipt.amount == 4_500
    client.select()
    client.verify_pin(PIN)
    assert client.get_balance() == 15_500


def test_a_deploy_stopped_between_steps_is_finished_by_running_it_again(station: Station,
                                                                       empty_card: SimulatorTransport) -> None:
    def stop_at_the_fifth(step: Step) -> None:
        stop_at_the_fifth.count += 1  # type: ignore[attr-defined]
        if stop_at_the_fifth.count == 5:  # type: ignore[attr-defined]
            raise DeployInterrupted(f"operator stop before {step.action} {step.name}")

    stop_at_the_fifth.count = 0  # type: ignore[attr-defined]
    with pytest.raises(DeployInterrupted):
        station.deploy(empty_card, before_step=stop_at_the_fifth)
    packages, instances = _contents(empty_card)
    assert packages == ["001122334455", "00112233445520", "001122334456", "F06361726410"] and instances == []
    card = station.inventory.cards()[0].card
    assert station.inventory.events(card)[-1].outcome == "failed"
    assert "run the deploy again" in (station.inventory.events(card)[-1].detail or "")

    resumed = station.deploy(empty_card)
    assert [s.name for s in resumed.performed if s.action == "load"] == ["paper_transparent", "paper_record",
                                                                         "paper_cyclic"]
    assert _contents(empty_card) == (SUITE_PACKAGES, SUITE_INSTANCES)
    loads = [target for action, target in _actions(station.inventory, card) if action == "load"]
    assert sorted(loads) == sorted(set(loads)) and len(loads) == 7  # each package loaded exactly once


def test_power_lost_during_personalisation_then_rerun(station: Station, empty_card: SimulatorTransport) -> None:
    send = empty_card.transmit_raw

    def tear_at_personalise(command: bytes) -> bytes:
        if command[1] == INS_PERSONALISE:
            empty_card.tear_after_writes(3)  # power lost after a few of PERSONALISE's writes
        return send(command)

    def arm(step: Step) -> None:
        if step.action == "personalise":
            empty_card.transmit_raw = tear_at_personalise  # type: ignore[method-assign]

    with pytest.raises(CardTornError):
        station.deploy(empty_card, before_step=arm)
    empty_card.transmit_raw = send  # type: ignore[method-assign]
    empty_card.reset()
    client = WalletClient(empty_card, WALLET_AID)
    client.select()
    assert client.status().state == WalletLifeCycle.INSTALLED  # PERSONALISE is atomic: nothing half-written
    with WalletStore(station.tmp / "wallet.db") as registry:  # recorded before PERSONALISE went out
        [pending] = registry.cards()
        assert pending.state == "personalising" and pending.instance == WALLET_AID.hex().upper()

    resumed = station.deploy(empty_card)
    assert [(s.action, s.name) for s in resumed.performed] == [("personalise", "wallet")]
    client.select()
    assert client.status().state == WalletLifeCycle.ACTIVE
    with WalletStore(station.tmp / "wallet.db") as registry:  # the same card finished, not a second one
        assert len(registry.accounts()) == 1
        [card] = registry.cards()
        assert (card.id, card.state) == (pending.id, "personalised")


def test_plan_reads_the_card_and_changes_nothing(station: Station, empty_card: SimulatorTransport) -> None:
    result = station.deploy(empty_card, plan_only=True)
    assert _contents(empty_card) == ([], [])
    text = render_plan(result.plan)
    assert "13 of 13 steps to do; nothing was changed on the card." in text
    # the card manager's own package: present, not the deploy's to load or count
    assert [f.aid.hex().upper() for f in result.plan.resident] == CARD_RESIDENT
    assert f"on card     0 packages, 0 applications; card-resident, not the deploy's: {CARD_RESIDENT[0]}" in text
    assert "DO   load        isofs" in text and "DO   personalise wallet" in text
    assert text.index("isofs") < text.index("isocmd") < text.index("isoapplet")  # the libraries first
    assert station.inventory.cards() == []  # a plan reads: not even the inventory is written
    assert not (station.tmp / "wallet.db").exists()

    station.deploy(empty_card)
    again = render_plan(station.deploy(empty_card, plan_only=True).plan)
    assert "Nothing to do" in again and "DO " not in again


def test_cli_deploy_and_plan(project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDSUITE_PIN", PIN)
    monkeypatch.setenv("CARDSUITE_PUK", PUK)
    common = ["--card", "sim", "--db", f"sqlite:///{tmp_path / 'inv.db'}", "--wallet-db", str(tmp_path / "w.db"),
              "--guard-db", str(tmp_path / "guard.db")]
    assert main(["deploy", str(SUITE), "--plan", *common]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Deploy plan: sim-suite (simulated card)") and "13 of 13 steps to do" in out
    assert main(["deploy", str(SUITE), *common]) == 0
    out = capsys.readouterr().out
    assert "personalise wallet" in out and "13 steps done, 0 already there" in out
    assert PIN not in out


# ---------------------------------------------------------------- bad profiles


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


DEV_KEYS = 'development = true\n[keys]\nkey = "404142434445464748494A4B4C4D4E4F"\n'


@pytest.mark.parametrize(("card", "keys", "message"), [
    ('type = "phone"\nkeys = "k.toml"\npackages = ["isofs"]', DEV_KEYS, "type must be one of simulated, javacard"),
    ('type = "simulated"\npackages = ["isofs"]', DEV_KEYS, "keys (the key profile's path) is required"),
    ('type = "simulated"\nkeys = "k.toml"', DEV_KEYS, "nothing to deploy"),
    ('type = "simulated"\nkeys = "k.toml"\npackages = ["nosuch"]', DEV_KEYS,
     "package 'nosuch' is neither a CAP file path nor a manifest package"),
    ('type = "simulated"\nkeys = "k.toml"\npackages = ["isofs"]\ncolour = 1', DEV_KEYS, "unknown entries colour"),
    ('type = "simulated"\nkeys = "k.toml"\npackages = ["isofs"]', '[keys]\nkey = "00112233445566778899AABBCCDDEEFF"\n',
     "holds a key value"),
    ('type = "simulated"\nkeys = "k.toml"\npackages = ["isofs"]', "kvn = 1\n", "no keys"),
    ('type = "simulated"\nkeys = "missing.toml"\npackages = ["isofs"]', DEV_KEYS, "does not exist"),
    ('type = "simulated"\nkeys = "k.toml"\n[[application]]\npackage = "wallet"\n[application.personalise]\n'
     'kind = "wallet"\nholder = "A"\npin = "1234"\npuk = "env:P"\n'
     'limits = { max_balance = 1, max_payment = 1, step_up = 1 }', DEV_KEYS, "pin must be \"env:NAME\""),
    ('type = "simulated"\nkeys = "k.toml"\n[[application]]\npackage = "isofs"\nprivileges = ["Root"]',
     DEV_KEYS, "unknown privilege 'Root'"),
    ('type = "simulated"\nkeys = "k.toml"\n[[application]]\npackage = "isofs"', DEV_KEYS,
     "package isofs has 0 applets"),
    ('type = "simulated"\nkeys = "k.toml"\npackages = [', DEV_KEYS, "is not valid TOML"),
])
def test_bad_profiles_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], card: str, keys: str,
                                          message: str) -> None:
    _write(tmp_path, "k.toml", keys)
    profile = _write(tmp_path, "card.toml", card)
    assert main(["deploy", str(profile), "--card", "sim", "--plan", "--db", f"sqlite:///{tmp_path / 'i.db'}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("Error: ") and message in err[-1], err


def test_a_missing_cap_says_which_and_how_to_build_it(station: Station, empty_card: SimulatorTransport,
                                                      tmp_path: Path) -> None:
    profile = _write(tmp_path, "cards/x.toml", f'type = "simulated"\nkeys = "{ROOT}/profiles/keys/development.toml"\n'
                     'packages = ["../gone.cap"]')
    with pytest.raises(Exception, match=r"the CAP file .*gone\.cap does not exist"):
        load_and_deploy = Deployer(station.project, load_card_profile(profile), empty_card, station.inventory, None)
        load_and_deploy.run()
    # a manifest package whose CAP was never built: which file, and the build command
    from cardsuite.deploy.deployer import _package_from_manifest
    from cardsuite.tooling.manifest import load_manifest

    manifest = load_manifest(station.project.manifest)
    bare = tmp_path / "bare"  # a checkout without build/cap or fixtures
    _write(bare, "applets/manifest.toml", station.project.manifest.read_text())
    need = _package_from_manifest(Project(bare), manifest, manifest.package("fsclient"))
    with pytest.raises(Exception, match=r"CAP file of package fsclient .* is missing .*invoke build"):
        need.read()


def test_where_a_run_costs_one_round_trip_loads_and_installs_go_in_one(station: Station,
                                                                         empty_card: SimulatorTransport,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A relay's transport (runs_cost_one_round_trip): the plan's loads and installs go in one run. The
    card refusing the third package's first LOAD block ends the run there: the two loads before it are
    recorded done, nothing after it reached the card, and the next deploy finishes the card, its SET STATUS
    (DeployOptions.secure) and the registry's read back at the end of the same run."""
    monkeypatch.setattr(empty_card, "runs_cost_one_round_trip", True, raising=False)
    runs: list[list[int]] = []
    many, one = empty_card.transmit_raw_many, empty_card.transmit_raw
    first_blocks = 0

    def refusing(command: bytes) -> bytes:
        nonlocal first_blocks
        if command[1] == 0xE8 and command[3] == 0:
            first_blocks += 1
            if first_blocks == 3:
                return b"\x6a\x84"
        return one(command)

    def run(commands: list[bytes]) -> list[bytes]:
        runs.append([command[1] for command in commands])
        return many(commands)

    monkeypatch.setattr(empty_card, "transmit_raw", refusing)
    monkeypatch.setattr(empty_card, "transmit_raw_many", run)
    with pytest.raises(GPError, match=r"LOAD block 1/\d+ failed: card answered 6A84"):
        station.deploy(empty_card)
    [together] = [r for r in runs if 0xE8 in r]
    assert together.count(0xE6) == len(SUITE_PACKAGES) + len(SUITE_INSTANCES)  # every INSTALL in the one run
    card = station.inventory.cards()[0].card
    assert [action for action, _ in _actions(station.inventory, card)].count("load") == 2
    assert first_blocks == 3 and _contents(empty_card)[1] == []  # nothing after the refusal was sent

    monkeypatch.setattr(empty_card, "transmit_raw", one)
    runs.clear()
    resumed = station.deploy(empty_card, secure=True)
    [together] = [r for r in runs if 0xE8 in r]
    assert together[-5:] == [0xF0, 0xF0, 0xF2, 0xF2, 0xF2]  # INITIALIZED, SECURED, then the registry
    assert [r for r in runs[runs.index(together) + 1 :] if 0xF2 in r] == [[0xA4, 0xF2, 0x50]]  # the wallet
    assert _contents(empty_card) == (SUITE_PACKAGES, SUITE_INSTANCES)
    assert resumed.performed[-2].action == "secure" and resumed.registry.isd.state == "SECURED"  # type: ignore[union-attr]
    assert len([s for s in resumed.performed if s.action == "load"]) == len(SUITE_PACKAGES) - 2
    loads = [target for action, target in _actions(station.inventory, card) if action == "load"]
    assert sorted(loads) == sorted(set(loads)) and len(loads) == len(SUITE_PACKAGES)
