"""`cardsuite gp --backend gppro` and the gp.jar wrapper against the simulated card over vpcd, and gp.jar as the
cross-check of our key diversification: keys derived by cardsuite (EMV CPG 2.1, VISA2, KDF3) and put on the card
by cardsuite's PUT KEY open a session in gp.jar given only the master key and its --key-kdf name. Skipped with
the reason without a gp.jar (CARDSUITE_GP_JAR)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cardsuite.cli.main import main
from cardsuite.gp.client import GlobalPlatform
from cardsuite.gp.gppro import GPPro
from cardsuite.gp.guard import BrickGuard
from cardsuite.gp.keys import MasterKeys
from cardsuite.gp.scp import KeySet
from cardsuite.project import Project
from cardsuite.settings import ENV_GP_JAR
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots
from support import ECHO_AID, ECHO_PACKAGE_AID

pytestmark = pytest.mark.e2e

ECHO = Path(__file__).parents[1] / "fixtures" / "caps" / "echo.cap"
DEV = KeySet.single(bytes(range(0x40, 0x50)))
MASTER = bytes.fromhex("A0A1A2A3A4A5A6A7A8A9AAABACADAEAF")


def _loaded_whole(progress: str) -> bool:
    """gp.jar's progress ends with its last block, n/n (n: however it cuts the CAP)."""
    return re.search(r"LOAD (\d+)/\1 blocks \(gp\.jar\)\n$", progress) is not None


@pytest.fixture
def gp_jar() -> Path:
    jar = os.environ.get(ENV_GP_JAR)
    if not jar or not Path(jar).is_file():
        pytest.skip(f"no GlobalPlatformPro: set {ENV_GP_JAR} to a gp.jar to run it against the simulated card")
    return Path(jar)


@pytest.fixture
def vpcd_card(project: Project, gp_jar: Path) -> Iterator:
    yield from _simulators(project)


@pytest.fixture
def vpcd_only(project: Project) -> Iterator:
    yield from _simulators(project)


def _simulators(project: Project) -> Iterator:
    started: list[VpcdSimulator] = []

    def start(protocol: str) -> VpcdSimulator:
        ensure_pcscd()
        slots = free_slots()
        if not slots:
            pytest.skip("every vpcd slot already holds a card")
        started.append(VpcdSimulator(project, slot=slots[0], applets=[],
                                     card_manager=CardManagerConfig(protocol)).start())
        return started[-1]

    yield start
    for simulator in started:
        simulator.stop()


def test_the_gppro_backend_loads_installs_a_second_instance_lists_and_deletes(
        vpcd_card, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    simulator = vpcd_card("scp03")
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "guard.db"))
    card = ["--card", f"vpcd:{simulator.slot}", "--dev-keys", "--backend", "gppro"]
    assert main(["gp", "load", str(ECHO), "--install", *card]) == 0
    out, err = capsys.readouterr()
    assert _loaded_whole(err) and f"installed {ECHO_AID.hex().upper()}" in out
    second = ECHO_AID.hex().upper() + "99"
    assert main(["gp", "install", "--package", ECHO_PACKAGE_AID.hex(), "--applet", ECHO_AID.hex(), "--instance",
                 second, "--params", "0102", *card]) == 0
    assert main(["gp", "list", *card]) == 0
    out = capsys.readouterr().out
    assert f"APP: {second} (SELECTABLE)" in out and f"APP: {ECHO_AID.hex().upper()} (SELECTABLE)" in out
    assert main(["gp", "delete", ECHO_PACKAGE_AID.hex(), "--related", *card]) == 0
    assert f"deleted {ECHO_PACKAGE_AID.hex().upper()} (gp.jar)" in capsys.readouterr().out
    assert main(["gp", "list", *card]) == 0
    assert ECHO_PACKAGE_AID.hex().upper() not in capsys.readouterr().out
    # refused with the reason: gp.jar would take the new keys on its command line
    assert main(["gp", "put-key", "--new-keys", "x.toml", *card]) == 1
    assert "where any user sees them in ps" in capsys.readouterr().err
    # a gp failure is one line with the status word and its meaning
    assert main(["gp", "delete", "F000000099", *card]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: gp.jar --delete F000000099") and err.count("\n") == 1, err


@pytest.mark.parametrize(("protocol", "kdf", "kvn"), [("scp03", "kdf3", 0x31), ("scp02", "emv", 0x21),
                                                       ("scp02", "visa2", 0x22)])
def test_gp_jar_opens_the_keys_cardsuite_diversified(vpcd_card, gp_jar: Path, tmp_path: Path, *, protocol: str,
                                                     kdf: str, kvn: int) -> None:
    simulator = vpcd_card(protocol)
    master = MasterKeys.of(MASTER, kdf, kvn)
    transport = simulator.transport()
    transport.connect()
    try:
        with transport.exclusive():
            gp = GlobalPlatform(transport)
            gp.open_secure_channel(DEV)
            gp.put_key(master)  # derived here for this card's key diversification data, then sent
    finally:
        transport.disconnect()
    registry = GPPro(gp_jar, reader=simulator.reader, guard=BrickGuard(tmp_path / "guard.db")).list(master)
    assert registry.isd is not None and registry.isd.state == "OP_READY"


def test_a_script_runs_in_one_pc_sc_transaction(vpcd_only, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture) -> None:
    """`gp script` over a real PC/SC stack: one SCardBeginTransaction for the whole script, one authentication."""
    from cardsuite.transport.pcsc import PcscTransport

    simulator = vpcd_only("scp03")
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "guard.db"))
    begun: list[int] = []
    begin = PcscTransport._begin_exclusive
    monkeypatch.setattr(PcscTransport, "_begin_exclusive", lambda self: (begun.append(1), begin(self))[1])
    commands: list[bytes] = []
    send = PcscTransport.transmit_raw
    monkeypatch.setattr(PcscTransport, "transmit_raw",
                        lambda self, command: (commands.append(bytes(command[:2])), send(self, command))[1])
    script = tmp_path / "run.gp"
    script.write_text(f"load {ECHO} --install\nlock {ECHO_AID.hex()}\nunlock {ECHO_AID.hex()}\nlist\n")
    assert main(["gp", "script", str(script), "--card", f"vpcd:{simulator.slot}", "--dev-keys"]) == 0
    out = capsys.readouterr().out
    assert f"APP: {ECHO_AID.hex().upper()} (SELECTABLE)" in out and "4 operations done in one session" in out
    assert begun == [1] and sum(c[1] == 0x50 for c in commands) == 1


def test_the_gppro_backend_loads_into_a_supplementary_security_domain(
        vpcd_card, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """`gp load --sd AID --backend gppro` is gp.jar's --load --to AID; the SSD made from the card's SD package."""
    simulator = vpcd_card("scp03")
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "guard.db"))
    card = ["--card", f"vpcd:{simulator.slot}", "--dev-keys", "--backend", "gppro"]
    ssd = "A000000151535041AA01"
    assert main(["gp", "install", "--package", "A0000001515350", "--applet", "A000000151535041", "--instance", ssd,
                 "--privs", "SecurityDomain", *card]) == 0
    assert main(["gp", "load", str(ECHO), "--sd", ssd, *card]) == 0
    assert _loaded_whole(capsys.readouterr().err)
    ours = ["--card", f"vpcd:{simulator.slot}", "--dev-keys"]
    assert main(["gp", "delete", ssd, *ours]) == 1  # our client: the package is the SSD's, so it stays
    assert "6985" in capsys.readouterr().err
    assert main(["gp", "delete", ECHO_PACKAGE_AID.hex(), *ours]) == 0
    assert main(["gp", "delete", ssd, *ours]) == 0  # empty now


def test_dap_keys_and_signatures_of_both_clients_agree(vpcd_card, gp_jar: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    """An SSD with DAP Verification: its DAP key put by our client (`gp put-key --isd SSD --dap-key`), the load signed
    by gp.jar (`gp load --dap-key --backend gppro`, gp.jar's --dap-key); and on a second card the key put by gp.jar
    (`--backend gppro`: gp -c SSD --put-key PEM --new-keyver 0x73) and the load signed by our client. The wrong key
    is 6982 through either."""
    from test_gppro_e2e import _dap_keys

    private, public, other = _dap_keys(tmp_path)
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "guard.db"))
    ssd = "A000000151535041AA01"
    domain = ["install", "--package", "A0000001515350", "--applet", "A000000151535041", "--instance", ssd,
              "--privs", "DAPVerification"]
    for protocol, key_by_ours in (("scp03", True), ("scp02", False)):
        simulator = vpcd_card(protocol)
        ours = ["--card", f"vpcd:{simulator.slot}", "--dev-keys"]
        signer = ours if not key_by_ours else [*ours, "--backend", "gppro"]
        assert main(["gp", *domain, *ours]) == 0
        keyer = ours if key_by_ours else [*ours, "--backend", "gppro"]  # gp.jar: -c SSD --put-key PEM
        assert main(["gp", "put-key", "--isd", ssd, "--dap-key", str(public), *keyer]) == 0, protocol
        capsys.readouterr()
        assert main(["gp", "load", str(ECHO), "--sd", ssd, "--dap-key", str(other), *signer]) == 1, protocol
        assert "6982" in capsys.readouterr().err.splitlines()[-1], protocol
        assert main(["gp", "load", str(ECHO), "--sd", ssd, "--dap-key", str(private), *signer]) == 0, protocol
        transport = simulator.transport()
        transport.connect()
        gp = GlobalPlatform(transport)
        gp.open_secure_channel(DEV)
        loaded = gp.registry().load_file(ECHO_PACKAGE_AID)
        transport.disconnect()
        assert loaded is not None and loaded.domain == bytes.fromhex(ssd), protocol
        simulator.stop()  # one vpcd slot at a time
