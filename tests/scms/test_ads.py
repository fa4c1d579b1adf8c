"""The ADS in process: a post-issuance of the catalogue's ISO applet (and the isofs library it imports) on an
empty simulated card, the keys only in the SoftHSM2 token; refusals of unknown, blacklisted and failing cards."""

from __future__ import annotations

import dataclasses

import pytest
from cardsuite.gp.client import GlobalPlatform
from cardsuite.project import Project
from cardsuite.scms.ads import MAX_AUTH_FAILURES, PostIssuance, RequestRefused
from cardsuite.scms.agent import set_cardholder_pin
from cardsuite.scms.system import ISSUER_MASTER, KeySetConfig, System
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.wallet.card import WALLET_AID, WalletClient, WalletLifeCycle

from tests.scms.conftest import card_identity

CHOSEN_PIN = "2468"  # the cardholder's, in the test only
ISO_APPLET = bytes.fromhex("0011223344552001")  # the manifest's IsoApplet instance


def _serve(scms: System, project: Project, card: SimulatorTransport, action: str, target: str):
    db = scms.database()
    request = db.new_request("test-terminal", action, target)
    ads = PostIssuance(scms, db, project, request)
    return db, request, ads


def test_install_from_the_catalogue_through_the_token(scms: System, project: Project, card: SimulatorTransport) -> None:
    cin = card_identity(card)
    db, request, ads = _serve(scms, project, card, "install", "isoapplet")
    db.upsert_card(cin, "SECURED")
    got, outcome = ads.run(card)
    assert got == cin
    record = db.request(request)
    assert record is not None and record.state == "done", record
    steps = [name for _, name, outcome, _ in db.steps(request) if outcome == "ok"]
    assert "load isofs" in steps and "install isoapplet" in steps, steps
    gp = GlobalPlatform(card)
    gp.select()
    assert gp.card_identity() == cin
    # the applet answers: installed for real
    assert card.select(ISO_APPLET).sw == 0x9000
    audit = db.query("SELECT operation, key_label FROM scms_audit WHERE request_id = ?", (request,))
    assert ("use", "transport") in audit and ("mac", "transport") in audit
    exchanges = db.exchanges(request)
    assert any(command.startswith("80 50") for _, command, _, _ in exchanges)  # INITIALIZE UPDATE recorded
    assert any(command.startswith("84 82") for _, command, _, _ in exchanges)


def test_unknown_and_blacklisted_cards_are_refused_before_authentication(scms: System, project: Project,
                                                                         card: SimulatorTransport) -> None:
    db, request, ads = _serve(scms, project, card, "install", "isoapplet")
    with pytest.raises(RequestRefused, match="unknown to the CMS"):
        ads.run(card)
    assert not any(c.startswith("80 50") for _, c, _, _ in db.exchanges(request))
    cin = card_identity(card)
    db.upsert_card(cin, "SECURED")
    db.set_blacklisted(cin, True)
    db, request, ads = _serve(scms, project, card, "install", "isoapplet")
    with pytest.raises(RequestRefused, match="blacklisted"):
        ads.run(card)
    assert db.request(request).state == "failed"  # type: ignore[union-attr]
    assert not any(c.startswith("80 50") for _, c, _, _ in db.exchanges(request))


def test_failing_cryptograms_are_counted_and_stop_the_ads(scms: System, project: Project,
                                                          card: SimulatorTransport) -> None:
    cin = card_identity(card)
    # the card does not hold the issuer master's diversified keys: its cryptogram fails through the token
    wrong = dataclasses.replace(scms, card_keys=KeySetConfig(ISSUER_MASTER, "kdf3", 0))
    scms.database().upsert_card(cin, "SECURED")
    for _ in range(MAX_AUTH_FAILURES):
        db, request, ads = _serve(wrong, project, card, "install", "isoapplet")
        with pytest.raises(Exception, match="cryptogram"):
            ads.run(card)
    db, request, ads = _serve(wrong, project, card, "install", "isoapplet")
    with pytest.raises(RequestRefused, match="failed authentication 3 times"):
        ads.run(card)
    assert db.card(cin)[5] == MAX_AUTH_FAILURES  # type: ignore[index]


def test_the_wallet_is_personalised_and_its_pin_chosen_where_the_card_is(scms: System, project: Project,
                                                                         card: SimulatorTransport) -> None:
    cin = card_identity(card)
    db, request, _ = _serve(scms, project, card, "install", "wallet-sim")
    db.upsert_card(cin, "OP_READY")
    seen: list[str] = []

    def at_the_terminal(aid: bytes, initial_pin: str, puk: str) -> str:
        seen.append(puk)
        set_cardholder_pin(card, aid, initial_pin, lambda _puk: CHOSEN_PIN, puk)
        return "chosen at the test's terminal"

    PostIssuance(scms, db, project, request, cardholder_pin=at_the_terminal).run(card)
    steps = {name: outcome for _, name, outcome, _ in db.steps(request)}
    assert steps["personalise wallet"] == "ok" and steps["cardholder PIN"] == "ok", steps
    assert db.card(cin)[3] == "SECURED"  # type: ignore[index]
    wallet = WalletClient(card, WALLET_AID)
    wallet.select()
    wallet.verify_pin(CHOSEN_PIN)
    assert wallet.status().state == WalletLifeCycle.ACTIVE
    # neither the chosen PIN nor the PUK is in any record the server keeps
    rows = db.query("SELECT command || ' ' || response FROM scms_exchanges WHERE request_id = ?", (request,))
    rows += db.query("SELECT COALESCE(detail, '') FROM scms_steps WHERE request_id = ?", (request,))
    rows += db.query("SELECT COALESCE(detail, '') FROM scms_audit WHERE request_id = ?", (request,))
    text = " ".join(r[0] for r in rows).replace(" ", "")
    for secret in (CHOSEN_PIN, seen[0]):
        assert secret.encode().hex().upper() not in text and secret not in text


def test_a_wallet_without_a_pin_step_is_refused(scms: System, project: Project, card: SimulatorTransport) -> None:
    db, request, ads = _serve(scms, project, card, "install", "wallet-sim")
    db.upsert_card(card_identity(card), "OP_READY")
    with pytest.raises(RequestRefused, match="nobody can choose its PIN"):
        ads.run(card)
    assert not any(c.startswith("80 50") for _, c, _, _ in db.exchanges(request))  # refused before any key use


def test_a_card_served_elsewhere_is_refused_and_the_terminal_told(scms: System, project: Project,
                                                                   card: SimulatorTransport) -> None:
    """Two terminals racing for one card: the one whose request holds the card goes on, the other's request
    is refused with the holder named, before any authentication."""
    cin = card_identity(card)
    db, first, _ = _serve(scms, project, card, "install", "isoapplet")
    db.upsert_card(cin, "SECURED")
    assert db.claim_request(first, "server-a") and db.claim_card(first, cin) is None
    _, second, ads = _serve(scms, project, card, "install", "isoapplet")
    with pytest.raises(RequestRefused, match=f"being served by request {first}"):
        ads.run(card)
    record = db.request(second)
    assert record is not None and record.state == "failed" and f"request {first}" in (record.reason or "")
    assert not any(c.startswith("80 50") for _, c, _, _ in db.exchanges(second))  # no INITIALIZE UPDATE spent
    db.finish_request(first, "failed", "the test's")
    _, third, ads = _serve(scms, project, card, "install", "isoapplet")
    assert ads.run(card)[0] == cin  # the card is free once the holder has ended
