"""Key rotation at deploy time: a key profile with ``rotate_to`` makes the deploy put the issuer keys in place
of the transport keys (PUT KEY), authenticate again with them, and record the card's key version in the
inventory; a deploy whose host dies at any command of the rotation (before, at and after the PUT KEY, in the
new session) is finished by the next run, which finds the card's keys without spending a try: one INITIALIZE
UPDATE per session, each followed by a successful EXTERNAL AUTHENTICATE, and no failure on the card's counter
or in the brick guard. In-process; the host "dies" as in test_deploy_crash."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cardsuite.cli.main import main
from cardsuite.deploy.deployer import Deployer, DeployOptions, DeployResult, render_plan
from cardsuite.deploy.inventory import Inventory
from cardsuite.deploy.profiles import load_card_profile
from cardsuite.gp.client import GlobalPlatform
from cardsuite.gp.guard import BrickGuard
from cardsuite.gp.scp import CardCryptogramError, KeySet
from cardsuite.project import Project
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.sim.vpcd import ensure_pcscd, free_slots
from cardsuite.transport.base import Transport
from support import CARD_RESIDENT, managed_load_files, resident_load_files
from test_deploy_crash import HostKilled, Sweep, _counting, _dies_at

ISSUER = KeySet(bytes(range(0x10, 0x20)), bytes(range(0x20, 0x30)), bytes(range(0x30, 0x40)), kvn=0x30)
ISSUER_ENV = {"ISSUER_ENC": ISSUER.enc.hex(), "ISSUER_MAC": ISSUER.mac.hex(), "ISSUER_DEK": ISSUER.dek.hex()}
DEV = KeySet.single(bytes(range(0x40, 0x50)))
INS_INITIALIZE_UPDATE, INS_EXTERNAL_AUTHENTICATE, INS_PUT_KEY = 0x50, 0x82, 0xD8


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    """A card profile loading the isofs library with transport keys (the development keys) rotated to issuer
    keys from the environment."""
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "transport.toml").write_text('description = "transport keys"\ndevelopment = true\nkvn = 0\nscp = 3\n'
                                         'rotate_to = "issuer.toml"\n')
    (keys / "issuer.toml").write_text('kvn = 0x30\nscp = 3\n[keys]\nenc = "env:ISSUER_ENC"\nmac = "env:ISSUER_MAC"\n'
                                      'dek = "env:ISSUER_DEK"\n')
    card = tmp_path / "rotate.toml"
    card.write_text('type = "simulated"\nkeys = "keys/transport.toml"\npackages = ["isofs"]\n')
    return card


def _deploy(project: Project, profile: Path, transport: Transport, inventory: Inventory, guard: Path,
            **options: object) -> DeployResult:
    return Deployer(project, load_card_profile(profile), transport, inventory, BrickGuard(guard),
                    options=DeployOptions(env=ISSUER_ENV, **options)).run()  # type: ignore[arg-type]


def _recording(transport: Transport) -> list[tuple[int, int]]:
    """(INS, status word) of every command from now on."""
    seen: list[tuple[int, int]] = []
    send = transport.transmit_raw

    def transmit(command: bytes) -> bytes:
        response = send(command)
        seen.append((command[1], int.from_bytes(response[-2:], "big")))
        return response

    transport.transmit_raw = transmit  # type: ignore[method-assign]
    return seen


def _no_try_spent(seen: list[tuple[int, int]]) -> None:
    """Every INITIALIZE UPDATE answered 9000 and followed by a successful EXTERNAL AUTHENTICATE."""
    for index, (ins, sw) in enumerate(seen):
        if ins == INS_INITIALIZE_UPDATE:
            assert sw == 0x9000 and seen[index + 1] == (INS_EXTERNAL_AUTHENTICATE, 0x9000), seen


def test_a_deploy_rotates_the_transport_keys_to_the_issuer_keys(
        project: Project, profile: Path, tmp_path: Path, empty_card: SimulatorTransport) -> None:
    with Inventory(f"sqlite:///{tmp_path / 'inventory.db'}") as inventory:
        plan = _deploy(project, profile, empty_card, inventory, tmp_path / "guard.db", plan_only=True).plan
        assert plan.steps[0].action == "rotate-keys" and not plan.steps[0].done
        assert "DO   rotate-keys" in render_plan(plan)
        assert inventory.keys(plan.card) is None  # a plan writes nothing
        seen = _recording(empty_card)
        result = _deploy(project, profile, empty_card, inventory, tmp_path / "guard.db")
        assert [s.action for s in result.performed] == ["rotate-keys", "load"]
        _no_try_spent(seen)
        put_key = seen.index((INS_PUT_KEY, 0x9000))
        assert seen[put_key + 1 :].count((INS_INITIALIZE_UPDATE, 0x9000)) >= 1  # a new session after PUT KEY
        record = inventory.keys(result.plan.card)
        assert record is not None and (record.kvn, record.key_set) == (0x30, "issuer")
        assert list(empty_card.manager.keyVersions()) == [0x30]
        rotated = [e for e in inventory.events(result.plan.card) if e.action == "rotate-keys"]
        assert rotated[-1].outcome == "ok" and "0x01 -> 0x30" in (rotated[-1].detail or "")
        assert ISSUER.enc.hex().upper() not in (rotated[-1].detail or "").upper()
        # again: the issuer keys are found (listed key version 30) and nothing is rotated twice
        again = _deploy(project, profile, empty_card, inventory, tmp_path / "guard.db")
        assert again.performed == [] and again.plan.steps[0].done
    gp = GlobalPlatform(empty_card)
    gp.open_secure_channel(ISSUER)
    with pytest.raises(CardCryptogramError):
        GlobalPlatform(empty_card).open_secure_channel(KeySet(DEV.enc, DEV.mac, DEV.dek, 0x30))


def test_the_cli_deploys_with_a_rotation(project: Project, profile: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """`cardsuite deploy` shows the rotation as the first step of its plan."""
    for name, value in ISSUER_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "guard.db"))
    assert main(["deploy", str(profile), "--card", "sim", "--plan", "--db", f"sqlite:///{tmp_path / 'i.db'}"]) == 0
    assert "rotate-keys" in capsys.readouterr().out


def _without_key_information(transport: Transport) -> None:
    """A card that gives its key information template (GET DATA 00E0) only in a secure channel: the deploy
    must go by the inventory's record and the key version INITIALIZE UPDATE answers with."""
    send = transport.transmit_raw

    def transmit(command: bytes) -> bytes:
        if command[0] == 0x80 and command[1:4] == b"\xca\x00\xe0":
            return b"\x69\x82"
        return send(command)

    transport.transmit_raw = transmit  # type: ignore[method-assign]


@pytest.mark.parametrize("key_information", ["listed", "hidden"])
def test_a_host_dying_anywhere_in_the_rotation_leaves_a_card_the_next_run_finishes(
        project: Project, profile: Path, tmp_path: Path, empty_cards: Callable[[], SimulatorTransport],
        key_information: str) -> None:
    def open_card() -> SimulatorTransport:
        card = empty_cards()
        if key_information == "hidden":
            _without_key_information(card)
        return card

    reference: list[bytes] = []
    card = open_card()
    _counting(card, reference)
    with Inventory(f"sqlite:///{tmp_path / 'reference.db'}") as inventory:
        _deploy(project, profile, card, inventory, tmp_path / "reference-guard.db")
    card.disconnect()
    # 1-based: the first session (INITIALIZE UPDATE, EXTERNAL AUTHENTICATE), the PUT KEY (processed, never
    # answered), the new session's SELECT, INITIALIZE UPDATE and EXTERNAL AUTHENTICATE, the command after it
    [put_key] = [i + 1 for i, c in enumerate(reference) if c[1] == INS_PUT_KEY]
    first_auth = next(i + 1 for i, c in enumerate(reference) if c[1] == INS_INITIALIZE_UPDATE)
    points = sorted({first_auth, first_auth + 1, put_key - 1, put_key, put_key + 1, put_key + 2, put_key + 3,
                     put_key + 4})
    rotated_by_the_rerun = []
    for at in points:
        work = tmp_path / f"at{at}"
        work.mkdir()
        card = open_card()
        try:
            with Inventory(f"sqlite:///{work / 'inventory.db'}") as inventory:
                undo = _dies_at(card, at)
                with pytest.raises(HostKilled):
                    _deploy(project, profile, card, inventory, work / "guard.db")
                undo()
                card.reset()
                seen = _recording(card)
                result = _deploy(project, profile, card, inventory, work / "guard.db")
                where = f"killed after command {at} ({reference[at - 1][:2].hex().upper()})"
                _no_try_spent(seen)
                assert int(card.manager.failedAuthentications()) == 0, where
                assert list(card.manager.keyVersions()) == [0x30], where
                record = inventory.keys(result.plan.card)
                assert record is not None and (record.kvn, record.key_set) == (0x30, "issuer"), where
                assert BrickGuard(work / "guard.db").failures() == [], where
                deploys = [e.outcome for e in inventory.events(result.plan.card) if e.action == "deploy"]
                assert deploys[-1] == "ok", where
                rotated_by_the_rerun.append("rotate-keys" in [s.action for s in result.performed])
        finally:
            card.disconnect()
    # killed before the PUT KEY reached the card, the next run rotates; at or after it, it finds the issuer keys
    assert rotated_by_the_rerun == [at < put_key for at in points], (points, put_key, rotated_by_the_rerun)


# ---------------------------------------------------------------- over vpcd: the host process killed


def _rotated(transport: Transport, wallet_db: Path, inventory: Inventory, where: str) -> None:
    """The card holds only the issuer keys (its key information template), they open a session, the package is
    there, and the inventory says so."""
    del wallet_db
    gp = GlobalPlatform(transport)
    gp.select()
    assert sorted({k.version for k in gp.key_info()}) == [0x30], where
    gp.open_secure_channel(ISSUER)
    aids = [f.aid for f in gp.registry().load_files]
    assert (managed_load_files(aids), resident_load_files(aids)) == (["001122334455"], CARD_RESIDENT), where
    [card] = inventory.cards()
    record = inventory.keys(card.card)
    assert record is not None and (record.kvn, record.key_set) == (0x30, "issuer"), where
    assert [e.outcome for e in inventory.events(card.card) if e.action == "deploy"][-1] == "ok", where


@pytest.mark.e2e
def test_a_deploy_killed_anywhere_in_the_rotation_over_vpcd_is_finished_by_the_next(
        project: Project, profile: Path, tmp_path: Path, pytestconfig: pytest.Config,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`cardsuite deploy` as a process, SIGKILLed by the bridge right after the card processed its Nth command: at
    the first session's INITIALIZE UPDATE and EXTERNAL AUTHENTICATE, the commands around the PUT KEY and the new
    session (the in-process test above does the same without a process to kill)."""
    if pytestconfig.getoption("--cardsuite-card") != "vpcd":
        pytest.skip("kills a host process talking to pcscd: run with --card vpcd")
    ensure_pcscd()
    slots = free_slots()
    if not slots:
        pytest.skip("every vpcd slot already holds a card")
    for name, value in ISSUER_ENV.items():
        monkeypatch.setenv(name, value)
    sweep = Sweep(project, slots[0], CardManagerConfig("scp03"), tmp_path, profile=profile, check=_rotated)
    reference = sweep.record_reference(monkeypatch)
    first = next(i + 1 for i, c in enumerate(reference) if c[1] == INS_INITIALIZE_UPDATE)
    [put_key] = [i + 1 for i, c in enumerate(reference) if c[1] == INS_PUT_KEY]
    points = sorted({first, first + 1, put_key - 1, *range(put_key, put_key + 5)})
    failures = [failure for at in points if (failure := sweep.kill_and_finish(at))]
    assert not failures, "\n".join(failures)
