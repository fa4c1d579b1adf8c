"""A traced deploy never shows what would decrypt the wallet's personalisation (issue 9, items 1 and 16).

The attack: a wallet installed under another instance AID than the manifest's, deployed with a trace. With
the INITIALIZE UPDATE exchange and the public transport keys, PERSONALISE's ciphertext gave the PIN, the PUK
and the card's issuer keys K_E/K_A. The rules mask by what a command is, so the AID changes nothing.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from cardsuite.cli.common import stream_sink
from cardsuite.cli.main import main
from cardsuite.deploy.deployer import Deployer, DeployOptions
from cardsuite.deploy.inventory import Inventory
from cardsuite.deploy.profiles import load_card_profile
from cardsuite.gp import scp as gp_scp
from cardsuite.gp.guard import BrickGuard
from cardsuite.project import Project
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.trace import Trace
from cardsuite.wallet import sm
from cardsuite.wallet.card import INS_PERSONALISE, pin_block, puk_block
from cardsuite.wallet.issuer import IssuerSecret
from cardsuite.wallet.store import WalletStore

ROOT = Path(__file__).resolve().parents[2]
PIN, PUK = "8642", "97531864"
ENV = {"CARDSUITE_PIN": PIN, "CARDSUITE_PUK": PUK}
INSTANCE = "F0636172641099"  # not the manifest's F0636172641001: the old rules were keyed on that one
INS_INITIALIZE_UPDATE = 0x50


def _profile(tmp_path: Path) -> Path:
    path = tmp_path / "other-instance.toml"
    path.write_text(f"""type = "simulated"
keys = "{ROOT}/profiles/keys/development.toml"
level = "mac"
[[application]]
name = "wallet"
package = "wallet"
instance = "{INSTANCE}"
params = "manifest"
[application.personalise]
kind = "wallet"
holder = "Hong Gildong"
limits = {{ max_balance = 1000000, max_payment = 300000, step_up = 50000 }}
pin = "env:CARDSUITE_PIN"
puk = "env:CARDSUITE_PUK"
issuer_secret = "development"
iin = "940001"
""")
    return path


class RecordingCard(SimulatorTransport):
    """The in-process simulator, keeping every raw exchange: what an attacker's trace must not reveal."""

    def __init__(self, project: Project) -> None:
        super().__init__(project, applets=[], card_manager=CardManagerConfig("scp03"))
        self.sent: list[tuple[bytes, bytes]] = []

    def transmit_raw(self, command: bytes) -> bytes:
        response = super().transmit_raw(command)
        self.sent.append((command, response))
        return response


def _compact(text: str) -> str:
    return text.replace(" ", "").upper()


def _assert_nothing_decrypts(shown: str, sent: list[tuple[bytes, bytes]], wallet_db: Path) -> None:
    """No PIN, PUK, K_E, K_A; no PERSONALISE ciphertext; no challenge from which session keys derive."""
    compact = _compact(shown)
    with WalletStore(wallet_db) as registry:
        row = registry.current_card(1)
    assert row is not None
    keys = IssuerSecret.development().card_keys(row.number_hash)
    for name, value in (("PIN", pin_block(PIN)), ("PUK", puk_block(PUK)), ("K_E", keys.enc), ("K_A", keys.mac)):
        assert value.hex().upper() not in compact, f"{name} in the trace"
    personalise = [c for c, _ in sent if c[1] == INS_PERSONALISE]
    assert len(personalise) == 1 and personalise[0][0] == 0x84
    ciphertext = personalise[0][5:]
    for at in range(0, len(ciphertext) - 7, 8):
        assert ciphertext[at:at + 8].hex().upper() not in compact, "PERSONALISE ciphertext in the trace"
    opened = [(c, r) for c, r in sent if c[1] == INS_INITIALIZE_UPDATE and r[-2:] == b"\x90\x00"]
    assert len(opened) >= 2  # the card manager's and the wallet's sessions
    for command, response in opened:
        data = response[:-2]
        card_challenge = (sm.WalletInitializeUpdateResponse.parse(data).card_challenge if len(data) == 17
                          else gp_scp.GPInitializeUpdateResponse.parse(data).card_challenge)
        for secret in (command[5:13], card_challenge):
            assert secret.hex().upper() not in compact, "an INITIALIZE UPDATE challenge in the trace"


def test_a_wallet_under_another_instance_aid_deploys_with_nothing_secret_in_the_trace(
        project: Project, tmp_path: Path) -> None:
    card = RecordingCard(project)
    card.connect()
    out = io.StringIO()
    card.trace = Trace(limit=10_000, sinks=[stream_sink(out)])
    options = DeployOptions(wallet_db=tmp_path / "wallet.db", env=ENV)
    with Inventory(f"sqlite:///{tmp_path / 'inventory.db'}", station="test") as inventory:
        Deployer(project, load_card_profile(_profile(tmp_path)), card, inventory,
                 BrickGuard(tmp_path / "guard.db"), options=options).run()
    shown = out.getvalue()
    _assert_nothing_decrypts(shown, card.sent, tmp_path / "wallet.db")
    assert "00 A4 04 00 07 " + " ".join(f"{b:02X}" for b in bytes.fromhex(INSTANCE)) in shown  # selected
    assert ">> 84 30 00 00" in shown and "bytes masked: wallet PERSONALISE (keys, PIN, PUK)]" in shown


def test_cli_deploy_on_the_in_process_simulator_prints_the_masked_trace(
        project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    sent: list[tuple[bytes, bytes]] = []
    transmit = SimulatorTransport.transmit_raw

    def recording(self: SimulatorTransport, command: bytes) -> bytes:
        response = transmit(self, command)
        sent.append((command, response))
        return response

    monkeypatch.setattr(SimulatorTransport, "transmit_raw", recording)  # the real simulator, recorded
    assert main(["deploy", str(_profile(tmp_path)), "--card", "sim", "--trace",
                 "--db", f"sqlite:///{tmp_path / 'inv.db'}", "--wallet-db", str(tmp_path / "w.db"),
                 "--guard-db", str(tmp_path / "guard.db")]) == 0
    err = capsys.readouterr().err
    assert err.count(">> ") == len(sent) > 20  # every exchange printed
    assert ">> 80 50 00 00 08 [8 bytes masked: INITIALIZE UPDATE challenge and cryptogram] Le=256" in err
    assert ">> 84 30 00 00" in err
    _assert_nothing_decrypts(err, sent, tmp_path / "w.db")
