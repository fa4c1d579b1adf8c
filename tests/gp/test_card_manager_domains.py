"""Supplementary security domains on the simulated card manager (GP Card Spec v2.3.1 §7.2, §11.5.2.3), in-process
with SCP02 and SCP03: an SSD installed from the card's Security Domain package (what gp --domain sends), its own
key set and secure channel, a load file loaded into it, extradition (gp --move --to), and DELETE refused while the
domain has content. The registry changes are tear-safe: a tear at any write leaves no half-made domain."""

from __future__ import annotations

from pathlib import Path

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.errors import CardTornError
from cardsuite.gp.client import GlobalPlatform, GPError
from cardsuite.gp.scp import CardCryptogramError, KeySet
from cardsuite.project import Project
from cardsuite.sim.inprocess import SimulatorTransport
from support.cardmanager import APPLET, DEV, ECHO, SCPS, SD_MODULE, SD_PACKAGE, SSD, empty_card_manager, isd_session

pytestmark = pytest.mark.sim_only  # resets and tears the in-process card

SD_PRIVILEGE = b"\x80\x00\x00"


card = pytest.fixture(params=SCPS, name="card")(empty_card_manager)


def with_domain(card: SimulatorTransport) -> GlobalPlatform:
    gp = isd_session(card)
    gp.install_for_install(SD_PACKAGE, SD_MODULE, SSD, privileges=SD_PRIVILEGE)
    return gp


def test_the_card_offers_its_security_domain_package(card: SimulatorTransport) -> None:
    package = isd_session(card).registry().load_file(SD_PACKAGE)
    assert package is not None and SD_MODULE in package.modules


def test_an_ssd_is_installed_with_the_security_domain_privilege(card: SimulatorTransport) -> None:
    gp = with_domain(card)
    entry = gp.registry().application(SSD)
    assert entry is not None
    assert entry.kind == "SSD" and entry.privileges == SD_PRIVILEGE and entry.state == "SELECTABLE"


def test_without_the_security_domain_privilege_nothing_is_made(card: SimulatorTransport) -> None:
    gp = isd_session(card)
    with pytest.raises(GPError) as refused:
        gp.install_for_install(SD_PACKAGE, SD_MODULE, SSD, privileges=b"\x00\x00\x00")
    assert refused.value.sw == 0x6A80
    assert gp.registry().application(SSD) is None


def test_the_ssd_has_its_own_secure_channel_and_keys(card: SimulatorTransport) -> None:
    with_domain(card)
    domain = GlobalPlatform(card, isd=SSD)
    domain.open_secure_channel(DEV)  # an SSD starts with the card's initial keys
    new = KeySet.single(bytes(range(0x60, 0x70)), kvn=0x30)
    domain.put_key(new, replace=None)
    domain = GlobalPlatform(card, isd=SSD)
    domain.open_secure_channel(new)  # the SSD's new key set ...
    assert list(card.manager.keyVersions()) == [0x01]  # ... and the ISD's keys are untouched
    isd_session(card)
    with pytest.raises(GPError) as absent:  # the ISD has no key set 30
        GlobalPlatform(card).open_secure_channel(new)
    assert absent.value.sw == 0x6A88
    with pytest.raises(CardCryptogramError):  # version 30 of the SSD holds the new keys, not the old
        GlobalPlatform(card, isd=SSD).open_secure_channel(KeySet.single(DEV.enc, kvn=0x30))


def test_the_ssd_has_no_content_management(card: SimulatorTransport) -> None:
    with_domain(card)
    domain = GlobalPlatform(card, isd=SSD)
    domain.open_secure_channel(DEV)
    with pytest.raises(GPError) as refused:
        domain.install_for_load(ECHO.package_aid)
    assert refused.value.sw == 0x6982


def test_a_load_file_loaded_into_the_ssd_and_its_application_belong_to_it(card: SimulatorTransport) -> None:
    gp = with_domain(card)
    gp.install_for_load(ECHO.package_aid, domain=SSD)
    gp.load(ECHO.load_file(False))
    gp.install_for_install(ECHO.package_aid, APPLET)
    registry = gp.registry()
    loaded, app = registry.load_file(ECHO.package_aid), registry.application(APPLET)
    assert loaded is not None and loaded.domain == SSD
    assert app is not None and app.domain == SSD


def test_extradition_moves_an_application_and_delete_waits_for_an_empty_domain(card: SimulatorTransport) -> None:
    gp = with_domain(card)
    gp.load_cap(ECHO)
    gp.install_for_install(ECHO.package_aid, APPLET)
    gp.install_for_extradition(APPLET, SSD)
    app = gp.registry().application(APPLET)
    assert app is not None and app.domain == SSD
    with pytest.raises(GPError) as refused:  # §11.2.2.1: the domain has an application
        gp.delete(SSD)
    assert refused.value.sw == 0x6985
    gp.install_for_extradition(APPLET, gp.isd or b"")
    app = gp.registry().application(APPLET)
    assert app is not None and app.domain == gp.isd
    gp.delete(SSD)
    assert gp.registry().application(SSD) is None


def test_extradition_to_no_such_domain_is_refused(card: SimulatorTransport) -> None:
    gp = isd_session(card)
    gp.load_cap(ECHO)
    with pytest.raises(GPError) as refused:
        gp.install_for_extradition(ECHO.package_aid, bytes.fromhex("A000000151DEAD"))
    assert refused.value.sw == 0x6A88
    loaded = gp.registry().load_file(ECHO.package_aid)
    assert loaded is not None and loaded.domain == gp.isd


def test_selecting_the_ssd_answers_its_fci_and_an_applet_select_leaves_it(card: SimulatorTransport) -> None:
    with_domain(card)
    response = card.transmit(CommandAPDU(0x00, 0xA4, 0x04, 0x00, SSD, le=256))
    assert response.sw == 0x9000 and SSD in response.data


def test_a_torn_ssd_install_leaves_no_domain(card: SimulatorTransport) -> None:
    tear = 1
    while True:
        gp = isd_session(card)
        card.tear_after_writes(tear)
        try:
            gp.install_for_install(SD_PACKAGE, SD_MODULE, SSD, privileges=SD_PRIVILEGE)
        except CardTornError:
            card.reset()
            assert isd_session(card).registry().application(SSD) is None, f"torn at write {tear}"
            with pytest.raises(GPError):
                GlobalPlatform(card, isd=SSD).select(SSD)
            tear += 1
            continue
        break
    assert tear == 3  # the entry with its keys, then the commit: each torn once
    assert isd_session(card).registry().application(SSD) is not None


def test_cli_load_into_an_ssd(project: Project, tmp_path: Path, capsys: pytest.CaptureFixture,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`cardsuite gp load CAP --sd AID`: INSTALL [for load] names the SSD; a malformed AID is one line."""
    from test_gp_sim import _cli, _open_card

    card = _open_card(project, tmp_path, "scp03")
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "cli-guard.db"))
    with_domain(card.transport)
    fixture = str(Path(__file__).parents[1] / "fixtures" / "caps" / "echo.cap")
    status, _, err = _cli(card, ["gp", "load", fixture, "--sd", "A0", "--dev-keys"], capsys)
    assert status == 1 and err.startswith("Error: --sd") and "\n" not in err.strip()
    status, _, err = _cli(card, ["gp", "load", fixture, "--install", "--sd", SSD.hex(), "--dev-keys"], capsys)
    assert status == 0, err
    registry = isd_session(card.transport).registry()
    loaded, app = registry.load_file(ECHO.package_aid), registry.application(APPLET)
    assert loaded is not None and loaded.domain == SSD
    assert app is not None and app.domain == SSD
