"""The deploy personalises through the registry of personalisers, keyed by the profile's [personalise]
kind, and knows of the wallet only its personaliser (cardsuite.wallet.personaliser)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from cardsuite.deploy import personalisers
from cardsuite.deploy.deployer import Deployer, DeployOptions
from cardsuite.deploy.profiles import load_card_profile
from cardsuite.errors import ConfigurationError
from cardsuite.gp.client import ISD_AID
from cardsuite.gp.guard import BrickGuard
from cardsuite.project import Project
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.transport.base import Transport
from cardsuite.wallet.personaliser import WalletPersonaliser
from support import PIN, PUK

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "host" / "cardsuite" / "deploy"
SUITE = ROOT / "profiles" / "cards" / "sim-suite.toml"
ENTRY_POINT = "cardsuite.wallet.personaliser"


def _imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_deploy_imports_of_the_wallet_are_its_personaliser_only() -> None:
    wallet = {f"{path.name}: {module}" for path in DEPLOY.rglob("*.py") for module in _imported(path)
              if module.startswith("cardsuite.wallet") and module != ENTRY_POINT}
    assert not wallet, "deploy reaches into the wallet beyond its personaliser:\n" + "\n".join(sorted(wallet))


def test_the_wallet_kind_is_registered_and_an_unknown_kind_says_which_are_known() -> None:
    assert personalisers.personaliser_for("wallet") is WalletPersonaliser
    with pytest.raises(ConfigurationError, match=r"no personaliser for kind 'purse' \(known: wallet\)"):
        personalisers.personaliser_for("purse")


@pytest.fixture
def empty_card(project: Project) -> Iterator[Transport]:
    transport = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig("scp03"))
    transport.connect()
    yield transport
    transport.disconnect()


def test_the_deployer_asks_the_registered_personaliser(project: Project, tmp_path: Path, empty_card: Transport,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the registry holds for the kind makes the plan's personalise step (a real wallet personaliser
    here, recording how it was made and asked)."""
    made: list[dict] = []
    asked: list[tuple[bool, bool]] = []

    class Recording(WalletPersonaliser):
        def __init__(self, **kwargs: object) -> None:
            made.append(kwargs)
            super().__init__(**kwargs)  # type: ignore[arg-type]

        def plan(self, transport: Transport, *, installed: bool, read_only: bool) -> tuple[bool, str]:
            asked.append((installed, read_only))
            return super().plan(transport, installed=installed, read_only=read_only)

    monkeypatch.setitem(personalisers.PERSONALISERS, "wallet", Recording)
    options = DeployOptions(plan_only=True, wallet_db=tmp_path / "wallet.db", env={})
    result = Deployer(project, load_card_profile(SUITE), empty_card, None, BrickGuard(tmp_path / "guard.db"),
                      options=options).run()
    [step] = [s for s in result.plan.steps if s.action == "personalise"]
    assert not step.done and step.detail.startswith("wallet for ")
    assert asked == [(False, True)]  # nothing installed yet; a plan reads only
    [kwargs] = made
    assert (kwargs["instance"], kwargs["simulated"], kwargs["database"]) == (step.aid, True, tmp_path / "wallet.db")
    assert not (tmp_path / "wallet.db").exists()


def test_the_card_is_secured_and_read_back_before_the_personalisations_in_the_installs_session(
        project: Project, tmp_path: Path, empty_card: Transport, monkeypatch: pytest.MonkeyPatch) -> None:
    """DeployOptions.secure: the card's life cycle goes on to SECURED (SET STATUS) after the loads and
    installs, and a personalisation changes no registry entry while its SELECT ends the card manager's
    session: the registry is read back after the SET STATUS and before the personalisation, in the session of
    the loads and installs. One handshake with the ISD in all; a second deploy finds the card secured."""
    commands: list[bytes] = []
    original = empty_card.transmit_raw
    monkeypatch.setattr(empty_card, "transmit_raw", lambda c: commands.append(c) or original(c))
    profile = load_card_profile(SUITE)
    env = {app.personalise.pin_env: PIN for app in profile.applications if app.personalise is not None}
    env |= {app.personalise.puk_env: PUK for app in profile.applications if app.personalise is not None}
    options = DeployOptions(wallet_db=tmp_path / "wallet.db", env=env, secure=True)
    result = Deployer(project, profile, empty_card, None, None, options=options).run()
    assert [s.action for s in result.performed][-2:] == ["secure", "personalise"]
    assert result.performed[-2].detail == "OP_READY -> SECURED"
    instructions = [c[1] for c in commands]
    secured = instructions.index(0xF0)
    assert [(c[2], c[3]) for c in commands[secured : secured + 2]] == [(0x80, 0x07), (0x80, 0x0F)]
    assert instructions[secured + 2 : secured + 5] == [0xF2] * 3  # the registry read back right after
    assert 0xA4 in instructions[secured + 5 :]  # then the wallet's SELECT
    selected, handshakes = b"", 0
    for command in commands:
        selected = command[5 : 5 + command[4]] if command[1] == 0xA4 else selected
        handshakes += command[1] == 0x50 and selected == ISD_AID
    assert handshakes == 1  # INITIALIZE UPDATE of the ISD: once
    assert result.registry.isd is not None and result.registry.isd.state == "SECURED"
    again = Deployer(project, profile, empty_card, None, None, options=options).run()
    [step] = [s for s in again.plan.steps if s.action == "secure"]
    assert step.done and step.detail == "SECURED already" and again.performed == []
