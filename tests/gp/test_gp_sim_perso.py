"""cardsuite's client (library and `cardsuite gp`) against the simulated card manager, in-process, SCP02 and
SCP03: PUT KEY (3DES and AES, a new version and in place of one; the new keys open a session, the old ones no
longer do), a master key diversified for the card, STORE DATA to the ISD and to an application, the response
security levels (--mode rmac/renc) as the card's i parameter allows them, S16, default-selected install, and a
script of operations in one authenticated session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.gp.client import DEFAULT_SELECTED
from cardsuite.gp.guard import BrickGuard
from cardsuite.gp.keys import MasterKeys, diversify_kdf3
from cardsuite.gp.scp import CardCryptogramError, KeySet, SecurityLevel, kcv
from cardsuite.project import Project
from cardsuite.sim.bridge import AppletInstall, CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.tooling.cap import read_cap
from cardsuite.trace import Trace
from support import ECHO_AID, ECHO_PACKAGE_AID
from test_gp_sim import GpCard, _cli

pytestmark = pytest.mark.sim_only  # JPype access to the card manager's key versions

h = bytes.fromhex
DEV = KeySet.single(bytes(range(0x40, 0x50)))
ECHO = Path(__file__).parents[1] / "fixtures" / "caps" / "echo.cap"
ISSUER_3DES = KeySet(h("00112233445566778899AABBCCDDEEFF"), h("0123456789ABCDEFFEDCBA9876543210"),
                     h("F0E1D2C3B4A5968778695A4B3C2D1E0F"), kvn=0x20)
ISSUER_AES = KeySet(bytes(range(0x10, 0x30)), bytes(range(0x30, 0x50)), bytes(range(0x50, 0x70)), kvn=0x30)
TEST_APPLET = h("F0000000AA0201")  # the bridge's test EchoApplet: answers what it received


def _card(project: Project, tmp_path: Path, protocol: str, scp_i: int | None = None,
          applets: list[AppletInstall] | None = None) -> GpCard:
    transport = SimulatorTransport(project, applets=applets or [], card_manager=CardManagerConfig(protocol,
                                                                                                 scp_i=scp_i))
    transport.connect()
    return GpCard(transport, transport.manager, BrickGuard(tmp_path / "guard.db"))


@pytest.fixture(params=["scp02", "scp03"])
def card(request: pytest.FixtureRequest, project: Project, tmp_path: Path) -> Iterator[GpCard]:
    card = _card(project, tmp_path, request.param)
    yield card
    card.transport.disconnect()


def _issuer(card: GpCard) -> KeySet:
    return ISSUER_AES if card.manager.protocol() == 3 else ISSUER_3DES


def _with_kvn(keys: KeySet, kvn: int) -> KeySet:
    return KeySet(keys.enc, keys.mac, keys.dek, kvn)


def test_put_key_in_place_of_the_transport_keys(card: GpCard) -> None:
    issuer = _issuer(card)
    gp = card.authenticated()
    stored = gp.put_key(issuer, replace=0x01)
    aes = card.manager.protocol() == 3
    assert stored.kvn == issuer.kvn and stored.kcvs == tuple(kcv(k, aes) for k in (issuer.enc, issuer.mac, issuer.dek))
    assert list(card.manager.keyVersions()) == [issuer.kvn]
    card.transport.reset()
    card.authenticated(keys=issuer).registry()  # the new keys open a session
    with pytest.raises(CardCryptogramError):
        card.client().open_secure_channel(_with_kvn(DEV, issuer.kvn), force=True)


def test_put_key_adds_a_version_beside_the_old_one(card: GpCard) -> None:
    issuer = _issuer(card)
    card.authenticated().put_key(issuer)
    assert sorted(card.manager.keyVersions()) == [0x01, issuer.kvn]
    gp = card.client()
    gp.select()
    assert sorted({k.version for k in gp.key_info()}) == [0x01, issuer.kvn]
    card.authenticated(keys=issuer)
    card.authenticated(keys=_with_kvn(DEV, 0x01))


def test_a_master_key_diversified_for_the_card(project: Project, tmp_path: Path) -> None:
    card = _card(project, tmp_path, "scp03")
    try:
        master = MasterKeys.of(bytes(range(0xA0, 0xB0)), "kdf3", 0x31)
        card.authenticated().put_key(master)
        gp = card.client()
        gp.select()
        kdd = gp.get_data(0x00CF)[2:]  # the card's key diversification data
        card.authenticated(keys=master)  # derived from the INITIALIZE UPDATE answer
        card.authenticated(keys=diversify_kdf3(master.enc, kdd, 0x31))  # the same keys, derived here
        with pytest.raises(CardCryptogramError):  # the master itself is not the card's key
            card.client().open_secure_channel(KeySet.single(master.enc, 0x31), force=True)
    finally:
        card.transport.disconnect()


def test_store_data_to_the_isd(card: GpCard) -> None:
    gp = card.authenticated()
    iin, cin = h("42000001"), h("0102030405060708090A")
    assert gp.store_data(b"\x42\x04" + iin + b"\x45\x0A" + cin, "tlv") == 1
    assert gp.get_data(0x0042) == b"\x42\x04" + iin and gp.get_data(0x0045) == b"\x45\x0A" + cin
    perso = h("4711633500000CAF")
    gp.store_data(b"\x9F\x66\x08" + perso, "dgi")
    assert gp.cplc().fields()["ic_personalizer"] == perso[:2]


@pytest.mark.parametrize("protocol", ["scp02", "scp03"])
def test_store_data_to_an_application(project: Project, tmp_path: Path, protocol: str) -> None:
    from test_card_manager_store_data import _BridgeTestApplets

    card = _card(_BridgeTestApplets(project.root), tmp_path, protocol,
                 applets=[AppletInstall(TEST_APPLET, "cardsuite.simtest.EchoApplet")])
    try:
        gp = card.authenticated()
        answers: list[bytes] = []
        send = card.transport.transmit_raw

        def recording(command: bytes) -> bytes:
            answers.append(send(command))
            return answers[-1]

        card.transport.transmit_raw = recording
        gp.install_for_personalization(TEST_APPLET)
        dgis = b"\x01\x01\x03ABC" + b"\x02\x02\x01Z"
        assert gp.store_data(dgis, "dgi") == 1
        # the applet got the STORE DATA (CLA 80: its security domain took off the C-MAC), last block, DGI format
        assert answers[-1] == bytes((0x80, 0xE2, 0x88, 0x00)) + dgis + h("9000")
        assert card.transport.transmit(CommandAPDU(0x80, 0xCA, 0x00, 0x42, le=256)).sw == 0x6A88  # not the ISD's
    finally:
        card.transport.disconnect()


@pytest.mark.parametrize(("scp_i", "mode", "level"), [(0x70, "rmac", 0x11), (0x70, "renc", 0x33),
                                                       (0x30, "rmac", 0x11)])
def test_response_levels_where_the_card_offers_them(project: Project, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch, *, scp_i: int, mode: str,
                                                    level: int) -> None:
    card = _card(project, tmp_path, "scp03", scp_i)
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "cli-guard.db"))
    try:
        status, out, err = _cli(card, ["gp", "load", str(ECHO), "--install", "--dev-keys", "--mode", mode], capsys)
        assert status == 0, err
        status, out, err = _cli(card, ["gp", "list", "--dev-keys", "--mode", mode], capsys)
        assert status == 0 and f"APP: {ECHO_AID.hex().upper()} (SELECTABLE)" in out, err
        gp = card.authenticated(SecurityLevel(level))
        assert gp.channel is not None and int(gp.channel.level) == level
    finally:
        card.transport.disconnect()


@pytest.mark.parametrize(("protocol", "scp_i", "mode", "message"), [
    ("scp03", 0x10, "rmac", "i=10 offers no R-MAC"),
    ("scp03", 0x30, "renc", "i=30 offers no R-ENCRYPTION"),
    ("scp02", 0x55, "rmac", "does not implement SCP02 R-MAC"),
])
def test_a_level_the_card_lacks_is_refused_before_initialize_update(
        project: Project, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, *,
        protocol: str, scp_i: int, mode: str, message: str) -> None:
    card = _card(project, tmp_path, protocol, scp_i)
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "cli-guard.db"))
    try:
        status, _, err = _cli(card, ["gp", "list", "--dev-keys", "--mode", mode], capsys)
        assert status == 1 and message in err and "nothing was sent" in err
        assert int(card.manager.failedAuthentications()) == 0  # no try spent
        assert BrickGuard(tmp_path / "cli-guard.db").failures() == []
    finally:
        card.transport.disconnect()


def test_s16_from_the_card_data(project: Project, tmp_path: Path) -> None:
    card = _card(project, tmp_path, "scp03", 0x71)  # i b1: S16
    try:
        gp = card.authenticated(SecurityLevel.C_MAC | SecurityLevel.C_DECRYPTION)
        assert gp.channel is not None and gp.channel.mac_length == 16
        gp.load_cap(read_cap(ECHO))
        gp.install_for_install(ECHO_PACKAGE_AID, ECHO_AID)
        assert card.echo(ECHO_AID)[-3:] == b"\x01\x02\x03"
    finally:
        card.transport.disconnect()


def test_default_selected_install(card: GpCard, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path) -> None:
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "cli-guard.db"))
    status, out, err = _cli(card, ["gp", "load", str(ECHO), "--install", "--default", "--dev-keys"], capsys)
    assert status == 0, err
    app = card.authenticated().registry().application(ECHO_AID)
    assert app is not None and DEFAULT_SELECTED in app.privilege_names


# ---------------------------------------------------------------- the CLI: put-key, store-data, script


def _issuer_profile(tmp_path: Path, keys: KeySet, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEST_ISSUER_ENC", keys.enc.hex())
    monkeypatch.setenv("TEST_ISSUER_MAC", keys.mac.hex())
    monkeypatch.setenv("TEST_ISSUER_DEK", keys.dek.hex())
    profile = tmp_path / "issuer.toml"
    profile.write_text(f'kvn = 0x{keys.kvn:02X}\n[keys]\nenc = "env:TEST_ISSUER_ENC"\nmac = "env:TEST_ISSUER_MAC"\n'
                       'dek = "env:TEST_ISSUER_DEK"\n')
    return profile


def test_cli_put_key_shows_the_key_check_values(card: GpCard, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "cli-guard.db"))
    issuer = _issuer(card)
    profile = _issuer_profile(tmp_path, issuer, monkeypatch)
    status, out, err = _cli(card, ["gp", "put-key", "--new-keys", str(profile), "--replace", "1", "--dev-keys"],
                            capsys)
    assert status == 0, err
    aes = card.manager.protocol() == 3
    expected = "  ".join(f"{role} {kcv(k, aes).hex().upper()}" for role, k in
                         (("ENC", issuer.enc), ("MAC", issuer.mac), ("DEK", issuer.dek)))
    assert f"put key version 0x{issuer.kvn:02X} in place of 0x01" in out and expected in out
    assert issuer.enc.hex().upper() not in out.upper()
    assert list(card.manager.keyVersions()) == [issuer.kvn]


def test_cli_store_data_from_a_file(card: GpCard, tmp_path: Path, capsys: pytest.CaptureFixture,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "cli-guard.db"))
    data = tmp_path / "isd.hex"
    data.write_text("# IIN and CIN\n42 04 42000001\n45 0A 0102030405060708090A\n")
    status, out, err = _cli(card, ["gp", "store-data", str(data), "--format", "tlv", "--dev-keys"], capsys)
    assert status == 0 and "stored 18 bytes (tlv) to the security domain in 1 STORE DATA commands" in out, err
    assert card.authenticated().get_data(0x0042) == h("420442000001")


def test_cli_script_runs_in_one_session_and_stops_at_the_first_failure(
        card: GpCard, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "cli-guard.db"))
    issuer = _issuer(card)
    _issuer_profile(tmp_path, issuer, monkeypatch)
    script = tmp_path / "field.gp"
    script.write_text(f"""# a field loader's run: one authentication
load {ECHO} --install
install --package {ECHO_PACKAGE_AID.hex()} --applet {ECHO_AID.hex()} --instance {ECHO_AID.hex()}99
put-key --new-keys issuer.toml
list
""")
    card.transport.trace = Trace(limit=2000)  # the CLI's transport shares it (test_gp_sim._Kept)
    status, out, err = _cli(card, ["gp", "script", str(script), "--dev-keys"], capsys)
    assert status == 0, err
    commands = [e.command for e in card.transport.trace.entries]
    assert sum(c.startswith("80 50 ") for c in commands) == 1  # one authentication for all
    assert f"installed {ECHO_AID.hex().upper()}99" in out and f"APP: {ECHO_AID.hex().upper()}99" in out
    assert "script: 4 operations done in one session" in out
    # again: the load fails (already loaded), nothing after it runs, and the message says what was done
    script.write_text(f"list\nload {ECHO}\ndelete {ECHO_AID.hex()}99\n")
    status, out, err = _cli(card, ["gp", "script", str(script), "--key-profile", str(tmp_path / "issuer.toml")],
                            capsys)
    assert status == 1 and "script stopped at line 2" in err and "already loaded" in err
    assert "Done before it: line 1 list" in err
    assert card.authenticated(keys=issuer).registry().application(ECHO_AID + b"\x99") is not None


def test_cli_script_lines_are_checked_before_the_card(card: GpCard, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "cli-guard.db"))
    script = tmp_path / "bad.gp"
    script.write_text("list\ndelete zz\n")
    card.transport.trace = Trace()
    status, _, err = _cli(card, ["gp", "script", str(script), "--dev-keys"], capsys)
    assert status == 1 and "line 2" in err and "AID 'zz' is not hex" in err
    assert not card.transport.trace.entries  # nothing sent
    script.write_text("cplc\n")
    status, _, err = _cli(card, ["gp", "script", str(script), "--dev-keys"], capsys)
    assert status == 1 and "'cplc' is not an operation a script runs" in err


def test_cli_make_default_moves_the_default_selected_privilege(card: GpCard, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "cli-guard.db"))
    assert _cli(card, ["gp", "load", str(ECHO), "--install", "--dev-keys"], capsys)[0] == 0
    status, out, err = _cli(card, ["gp", "make-default", ECHO_AID.hex(), "--dev-keys"], capsys)
    assert status == 0 and "is the default selected application" in out, err
    registry = card.authenticated().registry()
    app = registry.application(ECHO_AID)
    assert app is not None and DEFAULT_SELECTED in app.privilege_names
    assert registry.isd is not None and DEFAULT_SELECTED not in registry.isd.privilege_names


@pytest.mark.parametrize(("protocol", "kdf"), [("scp02", "emv"), ("scp02", "visa2"), ("scp03", "kdf3")])
def test_cli_kdf_opens_an_issued_card_from_its_master_key(project: Project, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch, *, protocol: str,
                                                          kdf: str) -> None:
    master = h("00112233445566778899AABBCCDDEEFF")
    transport = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig(
        protocol, keys=(master,) * 3, kdf=kdf, serial=h("12345678")))
    transport.connect()
    card = GpCard(transport, transport.manager, BrickGuard(tmp_path / "guard.db"))
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "cli-guard.db"))
    monkeypatch.setenv("CARDSUITE_GP_KEY", master.hex())
    try:
        status, out, err = _cli(card, ["gp", "list", "--kdf", kdf], capsys)
        assert status == 0 and "ISD: A000000151000000" in out, err
        status, _, err = _cli(card, ["gp", "list"], capsys)  # the master key is not the card's key
        assert status == 1 and "wrong keys" in err
    finally:
        transport.disconnect()
