"""The ADS in process: a post-issuance of the catalogue's ISO applet (and the isofs library it imports) on an
empty simulated card, the keys only in the SoftHSM2 token; refusals of unknown, blacklisted and failing cards."""

from __future__ import annotations

import dataclasses

import pytest
from cardsuite.deploy.inventory import Inventory
from cardsuite.errors import CardsuiteError, TransportError
from cardsuite.gp.client import GlobalPlatform
from cardsuite.gp.scp import LEVELS, CardCryptogramError, KeySet
from cardsuite.project import Project
from cardsuite.scms.ads import MAX_AUTH_FAILURES, PinStepOwed, PostIssuance, RequestRefused
from cardsuite.scms.agent import set_cardholder_pin
from cardsuite.scms.db import Database
from cardsuite.scms.system import ISSUER_MASTER, PIN_KEY, KeySetConfig, System
from cardsuite.sim.bridge import DEVELOPMENT_KEY
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.tooling.cap import read_cap
from cardsuite.wallet.card import WALLET_AID, WalletClient, WalletLifeCycle

from tests.scms.conftest import card_identity

CHOSEN_PIN = "2468"  # the cardholder's, in the test only
ISO_APPLET = bytes.fromhex("0011223344552001")  # the manifest's IsoApplet instance
# a step record the database refuses (a _trigger's body)
REFUSE_ISOCMD = "IF NEW.name = 'load isocmd' THEN RAISE EXCEPTION 'the test refuses this step'; END IF;"


def _serve(scms: System, project: Project, card: SimulatorTransport, action: str, target: str):
    db = scms.database()
    request = db.new_request("test-terminal", action, target)
    ads = PostIssuance(scms, db, project, request)
    return db, request, ads


def _one_database(scms: System, url: str, card: SimulatorTransport, state: str, *,
                  write_behind: bool) -> tuple[System, Database, str]:
    """The SCMS with the inventory in its own PostgreSQL database (a fleet's), made, and the card known to the
    CMS in ``state``: the system, its database (``write_behind``: as a serve process's) and the card's CIN."""
    one = dataclasses.replace(scms, database_url=url, inventory_url=url)
    db = one.database(write_behind=write_behind)
    db.create()
    Inventory(url, station="scms-init").close()
    cin = card_identity(card)
    db.upsert_card(cin, state)
    return one, db, cin


def _trigger(db: Database, name: str, table: str, body: str) -> None:
    """A row trigger on ``table`` running ``body`` (PL/pgSQL) before each insert: a fault the test makes."""
    db.execute(f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN {body} RETURN NEW; END $$ LANGUAGE plpgsql")
    db.execute(f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()")


def test_install_from_the_catalogue_through_the_token(scms: System, project: Project, card: SimulatorTransport) -> None:
    cin = card_identity(card)
    db, request, ads = _serve(scms, project, card, "install", "isoapplet")
    db.upsert_card(cin, "SECURED")
    read: list[str] = []  # the CAPs loaded come through the caller's reader (a serve process's CapCache)
    ads.read_cap = lambda path: read.append(path.stem) or read_cap(path)
    got, outcome = ads.run(card)
    assert got == cin
    assert sorted(read) == ["isoapplet", "isocmd", "isofs"], read
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
    # every command sent with a C-MAC (CLA 84) is a MAC under the token's key (and so is one wrapped for a
    # run that stopped before it); MACs in a row are one audit row that counts them
    macs = [detail for (detail,) in db.query("SELECT COALESCE(detail, '') FROM scms_audit WHERE request_id = ? "
                                             "AND operation = 'mac'", (request,))]
    counted = sum(int(detail.split()[0]) if detail.endswith(" uses") else 1 for detail in macs)
    assert counted >= sum(command.startswith("84") for _, command, _, _ in exchanges) > 40, macs
    assert len(macs) < counted / 4, macs


def test_several_applications_in_one_request_are_one_deploy(scms: System, project: Project,
                                                            card: SimulatorTransport) -> None:
    cin = card_identity(card)
    db, request, ads = _serve(scms, project, card, "install", "isoapplet wallet-sim")
    db.upsert_card(cin, "SECURED")
    ads.cardholder_pin = lambda aid, initial, puk: set_cardholder_pin(card, aid, initial, lambda _: CHOSEN_PIN, puk)
    got, outcome = ads.run(card)
    assert got == cin and outcome.startswith("install isoapplet, wallet:"), outcome
    steps = [name for _, name, step_outcome, _ in db.steps(request) if step_outcome == "ok"]
    assert {"load isofs", "install isoapplet", "install wallet", "cardholder PIN"} <= set(steps), steps
    assert steps.count("card identity") == 1  # the card identified once for both
    assert card.select(ISO_APPLET).sw == 0x9000
    wallet = WalletClient(card, WALLET_AID)
    wallet.select()
    wallet.verify_pin(CHOSEN_PIN)


@pytest.mark.parametrize("case", [
    ("lock", "isoapplet wallet-sim", "lock takes one application of the catalogue, not 2"),
    ("remove", "", "remove takes one application of the catalogue, not 0"),
    ("install", "isoapplet nosuchapp", "application 'nosuchapp' is not in the catalogue"),
    ("install", " ", "install: name an application of the catalogue"),
], ids=["lock-two", "remove-none", "install-unknown", "install-none"])
def test_a_request_naming_the_wrong_applications_is_refused_before_authentication(
        scms: System, project: Project, card: SimulatorTransport, case: tuple[str, str, str]) -> None:
    action, target, reason = case
    db, request, ads = _serve(scms, project, card, action, target)
    db.upsert_card(card_identity(card), "SECURED")
    with pytest.raises(RequestRefused, match=reason):
        ads.run(card)
    assert db.request(request).state == "failed"  # type: ignore[union-attr]
    assert not any(c.startswith("80 50") for _, c, _, _ in db.exchanges(request))


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
    assert db.card(cin).auth_failures == MAX_AUTH_FAILURES  # type: ignore[union-attr]


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
    # each secure channel the deploy opened is a step; SET STATUS went in the one of the loads and installs,
    # after the registry was read back and before the wallet's personalisation selected the wallet: one
    # handshake with the ISD in all
    names = [name for _, name, _, _ in db.steps(request)]
    assert names[names.index("card identity") + 1] == "mutual authentication", names
    assert names[-4:] == ["secure card", "personalise wallet", "cardholder PIN", "record"], names
    handshakes = [c for _, c, _, _ in db.exchanges(request) if c.startswith("80 50 00")]  # key version 0: the ISD's
    assert len(handshakes) == names.count("mutual authentication") == 1, names
    assert db.card(cin).state == "SECURED"  # type: ignore[union-attr]
    with Inventory(scms.inventory_url) as inventory:  # the inventory says what the CMS says (read from the card)
        recorded = inventory.card(cin)
        assert recorded is not None and recorded.life_cycle == "SECURED"
        assert ("secure", "ok", "OP_READY -> SECURED") in {(e.action, e.outcome, e.detail)
                                                           for e in inventory.events(cin)}
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


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)
def test_the_owed_pin_step_is_durable_before_the_wallet_changes(
        scms: System, project: Project, card: SimulatorTransport, empty_url: str) -> None:
    """Committed behind (a serve process's connections), the PIN step owed ahead of the personalisation is
    written while the wallet's state is read, and committed before the issuer's first command to the wallet
    (its EXTERNAL AUTHENTICATE): a server lost from there on leaves the owed step for the next request."""
    import psycopg

    one, db, cin = _one_database(scms, empty_url, card, "OP_READY", write_behind=True)
    # the owed step's commit held back a while: the wallet's first change must wait for it, not overtake it
    _trigger(db, "slow", "scms_owed_pins", "PERFORM pg_sleep(0.3);")
    owed_then: list[int] = []
    wallet_selected = False
    real = card.transmit_raw

    def looks(command: bytes) -> bytes:
        nonlocal wallet_selected
        if command[1] == 0xA4 and WALLET_AID in command:
            wallet_selected = True
        elif wallet_selected and command[1] == 0x82 and not owed_then:  # the issuer channel's EXTERNAL AUTHENTICATE
            with psycopg.connect(empty_url) as other:
                owed_then.append(other.execute("SELECT COUNT(*) FROM scms_owed_pins").fetchone()[0])
        return real(command)

    card.transmit_raw = looks  # type: ignore[method-assign]
    request = db.new_request("test-terminal", "install", "wallet-sim")

    def at_the_terminal(aid: bytes, initial_pin: str, puk: str) -> str:
        set_cardholder_pin(card, aid, initial_pin, lambda _puk: CHOSEN_PIN, puk)
        return "chosen at the test's terminal"

    with Inventory(empty_url, write_behind=True) as ads_inventory:
        PostIssuance(one, db, project, request, cardholder_pin=at_the_terminal, inventory=ads_inventory).run(card)
    card.transmit_raw = real  # type: ignore[method-assign]
    assert owed_then == [1]  # written and committed before the wallet changed
    assert db.request(request).state == "done"  # type: ignore[union-attr]
    assert db.owed_pins(cin) == {}  # the PIN step done: forgotten
    db.close()


def _wallet_request(scms: System, project: Project, card: SimulatorTransport, cin: str,
                    pin_step) -> tuple[Database, int, PostIssuance]:  # noqa: ANN001 - an ads.CardholderPin
    db = scms.database()
    request = db.new_request("test-terminal", "install", "wallet-sim")
    return db, request, PostIssuance(scms, db, project, request, cardholder_pin=pin_step)


def _breaks_after(card: SimulatorTransport, seen: list[tuple[str, str]], set_it: bool):  # noqa: ANN202
    """A terminal whose link breaks at the PIN step: before the PIN went to the card, or after (answer lost)."""
    def step(aid: bytes, initial_pin: str, puk: str) -> str:
        seen.append((initial_pin, puk))
        if set_it:
            set_cardholder_pin(card, aid, initial_pin, lambda _puk: CHOSEN_PIN, puk)
        raise TransportError("the terminal went away")
    return step


def _sets_pin(card: SimulatorTransport, seen: list[tuple[str, str]]):  # noqa: ANN202
    def step(aid: bytes, initial_pin: str, puk: str) -> str:
        seen.append((initial_pin, puk))
        set_cardholder_pin(card, aid, initial_pin, lambda _puk: CHOSEN_PIN, puk)
        return "chosen at the test's terminal"
    return step


def _first_run_breaks_at_the_pin_step(scms: System, project: Project, card: SimulatorTransport, *,
                                      set_it: bool) -> tuple[str, list[tuple[str, str]], Database, int]:
    """An empty card's wallet install whose terminal goes away at the PIN step: the CIN, the one-time PIN
    and PUK the terminal was given, the database and the failed request."""
    cin = card_identity(card)
    scms.database().upsert_card(cin, "OP_READY")
    seen: list[tuple[str, str]] = []
    db, first, ads = _wallet_request(scms, project, card, cin, _breaks_after(card, seen, set_it=set_it))
    with pytest.raises(PinStepOwed, match="keeps its one-time PIN until the request is run again"):
        ads.run(card)
    assert db.request(first).state == "failed"  # type: ignore[union-attr]
    return cin, seen, db, first


def test_a_pin_step_that_failed_is_asked_again_by_the_next_install(scms: System, project: Project,
                                                                   card: SimulatorTransport) -> None:
    cin, seen, db, first = _first_run_breaks_at_the_pin_step(scms, project, card, set_it=False)
    assert db.query("SELECT reason_kind FROM scms_requests WHERE id = ?", (first,)) == [("cardholder PIN not set",)]
    assert list(db.owed_pins(cin)) == [WALLET_AID.hex().upper()]
    # the cardholder's PIN is asked again with the same one-time PIN and PUK (computed again in the token)
    db, second, ads = _wallet_request(scms, project, card, cin, _sets_pin(card, seen))
    ads.run(card)
    steps = {name: outcome for _, name, outcome, _ in db.steps(second)}
    assert steps["personalise wallet"] == "skipped" and steps["cardholder PIN"] == "ok", steps
    assert seen[1] == seen[0] and len(set(seen[0])) == 2, "the PIN and PUK the first run set"
    assert db.owed_pins(cin) == {}  # its nonce forgotten: nothing can compute that one-time PIN again
    wallet = WalletClient(card, WALLET_AID)
    wallet.select()
    wallet.verify_pin(CHOSEN_PIN)
    wallet.unblock_pin(seen[0][1])  # the PUK the cardholder was shown works
    # a third install owes nothing and asks nothing (the wallet keeps the cardholder's PIN)
    db, third, ads = _wallet_request(scms, project, card, cin, _sets_pin(card, seen))
    ads.run(card)
    assert len(seen) == 2 and "cardholder PIN" not in {name for _, name, _, _ in db.steps(third)}


def test_a_pin_set_whose_answer_was_lost_is_not_asked_for_again(scms: System, project: Project,
                                                               card: SimulatorTransport) -> None:
    cin, seen, db, _ = _first_run_breaks_at_the_pin_step(scms, project, card, set_it=True)
    db, second, ads = _wallet_request(scms, project, card, cin, _sets_pin(card, seen))
    ads.run(card)
    details = {name: (outcome, detail) for _, name, outcome, detail in db.steps(second)}
    assert details["cardholder PIN"] == ("ok", "chosen before: the card refuses the one-time PIN (63C2)"), details
    assert db.request(second).state == "done" and db.owed_pins(cin) == {}  # type: ignore[union-attr]
    wallet = WalletClient(card, WALLET_AID)
    wallet.select()
    wallet.verify_pin(CHOSEN_PIN)  # the PIN chosen in the first run stands


def test_a_system_whose_token_lacks_the_pin_key_makes_it_once(scms: System, project: Project,
                                                              card: SimulatorTransport) -> None:
    with scms.kms() as kms:  # as a token made before the key was
        kms.key(PIN_KEY).destroy()
    cin = card_identity(card)
    scms.database().upsert_card(cin, "OP_READY")
    db, request, ads = _wallet_request(scms, project, card, cin, _sets_pin(card, []))
    ads.run(card)
    assert db.request(request).state == "done"  # type: ignore[union-attr]
    audit = db.query("SELECT operation, key_label FROM scms_audit WHERE key_label = ?", (PIN_KEY,))
    assert audit.count(("generate", PIN_KEY)) == 1 and ("derive", PIN_KEY) in audit, audit


def test_a_wallet_without_a_pin_step_is_refused(scms: System, project: Project, card: SimulatorTransport) -> None:
    db, request, ads = _serve(scms, project, card, "install", "wallet-sim")
    db.upsert_card(card_identity(card), "OP_READY")
    with pytest.raises(RequestRefused, match="nobody can choose its PIN"):
        ads.run(card)
    assert not any(c.startswith("80 50") for _, c, _, _ in db.exchanges(request))  # refused before any key use


def test_lock_unlock_and_remove_an_installed_application(scms: System, project: Project,
                                                         card: SimulatorTransport) -> None:
    cin = card_identity(card)
    db, request, ads = _serve(scms, project, card, "install", "isoapplet")
    db.upsert_card(cin, "SECURED")
    ads.run(card)

    def state() -> str | None:
        gp = GlobalPlatform(card)
        gp.select()
        gp.open_secure_channel(KeySet.single(DEVELOPMENT_KEY, 1), LEVELS["mac"])
        app = gp.registry().application(ISO_APPLET)
        return app.state if app is not None else None

    for action, expected in (("lock", "LOCKED"), ("unlock", "SELECTABLE")):
        _, request, ads = _serve(scms, project, card, action, "isoapplet")
        assert ads.run(card) == (cin, f"{action} isoapplet")
        assert state() == expected
    assert card.select(ISO_APPLET).sw == 0x9000
    _, request, ads = _serve(scms, project, card, "remove", "isoapplet")
    ads.run(card)
    assert state() is None
    _, request, ads = _serve(scms, project, card, "remove", "isoapplet")
    with pytest.raises(RequestRefused, match="has no application isoapplet"):
        ads.run(card)


def test_a_link_lost_mid_load_is_finished_by_the_next_request(scms: System, project: Project,
                                                              card: SimulatorTransport) -> None:
    """The terminal goes away in the middle of LOAD (the agent killed): the request fails with the reason,
    and the next request finishes the card (the deployer's plan from what the card holds)."""
    cin = card_identity(card)
    db, request, ads = _serve(scms, project, card, "install", "isoapplet")
    db.upsert_card(cin, "SECURED")
    sent = {"load blocks": 0}
    real = card.transmit_raw

    def dies_at_the_fifth_load_block(command: bytes) -> bytes:
        if command[1] == 0xE8:  # LOAD
            sent["load blocks"] += 1
            if sent["load blocks"] == 5:
                raise TransportError("the terminal went away")
        return real(command)

    card.transmit_raw = dies_at_the_fifth_load_block  # type: ignore[method-assign]
    with pytest.raises(TransportError):
        ads.run(card)
    card.transmit_raw = real  # type: ignore[method-assign]
    assert db.request(request).state == "failed"  # type: ignore[union-attr]
    assert "went away" in (db.request(request).reason or "")  # type: ignore[union-attr]
    card.reset()
    _, request, ads = _serve(scms, project, card, "install", "isoapplet")
    ads.run(card)
    assert card.select(ISO_APPLET).sw == 0x9000


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)  # an SQLite inventory is a file of its own
@pytest.mark.parametrize("write_behind", [False, True], ids=["committed-at-once", "committed-behind"])
def test_a_step_and_its_inventory_event_are_written_together_on_one_database(
        scms: System, project: Project, card: SimulatorTransport, empty_url: str, write_behind: bool) -> None:
    """With the inventory in the SCMS's own PostgreSQL database (a fleet's), a step done and the deployer's
    event of it are one commit: a step record refused mid-deploy leaves neither, and the next request
    finishes the card from what the card holds (the package loaded then is skipped, not loaded twice).
    Committed behind (a serve process's connections), the refusal is known a step or more later (the
    commits made while it was under way are chained after it, and none is committed): the load after the
    refused one ran, and the next request finds it done."""
    one, db, cin = _one_database(scms, empty_url, card, "SECURED", write_behind=write_behind)
    _trigger(db, "refuse", "scms_steps", REFUSE_ISOCMD)
    request = db.new_request("test-terminal", "install", "isoapplet")
    with Inventory(empty_url, write_behind=write_behind) as ads_inventory, \
            pytest.raises(CardsuiteError, match="the test refuses this step"):
        PostIssuance(one, db, project, request, inventory=ads_inventory).run(card)
    with Inventory(empty_url) as inventory:
        loads = [event.target.split()[0] for event in inventory.events(cin) if event.action == "load"]
    steps = [name for _, name, _, _ in db.steps(request)]
    assert "load isofs" in steps and "load isocmd" not in steps, steps
    assert loads == ["isofs"], loads  # the refused step's event went with it
    # the failure written: the refused step is not tried again with it (psycopg may raise the refusal at
    # the statement, before the transaction's end: seen 1 run in 6 before the notes were taken first)
    assert db.request(request).state == "failed"  # type: ignore[union-attr]
    db.execute("DROP TRIGGER refuse ON scms_steps")
    card.reset()
    again = db.new_request("test-terminal", "install", "isoapplet")
    PostIssuance(one, db, project, again).run(card)
    outcomes = {name: outcome for _, name, outcome, _ in db.steps(again)}
    # the refused step's load, and when committed behind the next ones' too (as many as ran before the
    # refusal was known), went unrecorded with the refusal (as with a server killed between the card's answer
    # and the commit): the plan finds them done
    assert outcomes["load isocmd"] == "skipped", outcomes
    assert outcomes["install isoapplet"] in (("ok", "skipped") if write_behind else ("ok",)), outcomes
    assert outcomes["load isoapplet"] == ("skipped" if write_behind else "ok"), outcomes
    with Inventory(empty_url) as inventory:
        loads = [event.target.split()[0] for event in inventory.events(cin) if event.action == "load"]
        held = {content.aid for content in inventory.contents(cin)}
    assert sorted(loads) == (["isofs"] if write_behind else ["isoapplet", "isofs"]), loads
    assert ISO_APPLET.hex().upper() in held and card.select(ISO_APPLET).sw == 0x9000
    db.close()


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("write_behind", [False, True], ids=["committed-at-once", "committed-behind"])
def test_the_deploys_last_record_refused_fails_the_request_and_frees_the_card(
        scms: System, project: Project, card: SimulatorTransport, empty_url: str, write_behind: bool) -> None:
    """The deployer's last record (its deploy event, after the card's last command) refused: committed
    behind, the refusal is known only when the request ends, and still fails the request (not left running)
    and frees the card, so that the next request finishes the job."""
    one, db, cin = _one_database(scms, empty_url, card, "OP_READY", write_behind=write_behind)
    _trigger(db, "refuse", "inv_events", "IF NEW.action = 'deploy' AND NEW.outcome = 'ok' THEN "
             "RAISE EXCEPTION 'the test refuses this event'; END IF;")
    request = db.new_request("test-terminal", "install", "isoapplet")
    with Inventory(empty_url, write_behind=write_behind) as ads_inventory, \
            pytest.raises(CardsuiteError, match="the test refuses this event"):
        PostIssuance(one, db, project, request, inventory=ads_inventory).run(card)
    ended = db.request(request)
    assert ended is not None and ended.state == "failed" and "refuses this event" in (ended.reason or "")
    assert db.query("SELECT busy_request FROM scms_cards WHERE cin = ?", (cin,)) == [(None,)]
    db.execute("DROP TRIGGER refuse ON inv_events")
    again = db.new_request("test-terminal", "install", "isoapplet")
    PostIssuance(one, db, project, again).run(card)
    outcomes = {name: outcome for _, name, outcome, _ in db.steps(again)}
    assert outcomes["install isoapplet"] == "skipped", outcomes
    assert db.card(cin).state == "SECURED"  # type: ignore[union-attr]
    db.close()


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("write_behind", [False, True], ids=["committed-at-once", "committed-behind"])
def test_a_pin_step_done_is_forgotten_even_when_the_requests_last_commit_is_refused(
        scms: System, project: Project, card: SimulatorTransport, empty_url: str, write_behind: bool) -> None:
    """The PIN step's nonce is forgotten in the request's last commit: refused (after the card's last command),
    the request fails, and its failure's commit forgets the nonce instead. Nothing is owed: a next run does
    not ask the cardholder again for a PIN the card already holds (it would cost a PIN try, 63Cx)."""
    one, db, cin = _one_database(scms, empty_url, card, "OP_READY", write_behind=write_behind)
    _trigger(db, "refuse", "scms_steps", "IF NEW.name = 'record' THEN RAISE EXCEPTION 'the test refuses it'; END IF;")
    request = db.new_request("test-terminal", "install", "wallet-sim")
    seen: list[tuple[str, str]] = []
    with Inventory(empty_url, write_behind=write_behind) as ads_inventory, \
            pytest.raises(CardsuiteError, match="the test refuses it"):
        PostIssuance(one, db, project, request, cardholder_pin=_sets_pin(card, seen), inventory=ads_inventory).run(card)
    ended = db.request(request)
    assert ended is not None and ended.state == "failed" and "refuses it" in (ended.reason or ""), ended
    assert len(seen) == 1 and db.owed_pins(cin) == {}
    assert db.query("SELECT busy_request FROM scms_cards WHERE cin = ?", (cin,)) == [(None,)]
    wallet = WalletClient(card, WALLET_AID)
    wallet.select()
    wallet.verify_pin(CHOSEN_PIN)
    db.close()


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)
def test_a_link_lost_while_a_refused_commit_is_behind_still_ends_the_request(
        scms: System, project: Project, card: SimulatorTransport, empty_url: str) -> None:
    """Two faults in one request: a step's record refused, committed behind (known once its commit has
    ended: perhaps after the next steps), and the link lost at the next package's load. The request ends
    failed with the first of the two known (not left running by the second), the card is freed, and the
    next request finishes the card."""
    one, db, cin = _one_database(scms, empty_url, card, "SECURED", write_behind=True)
    _trigger(db, "refuse", "scms_steps", REFUSE_ISOCMD)
    sent = {"loads begun": 0}
    real = card.transmit_raw

    def dies_at_the_third_package(command: bytes) -> bytes:
        if command[1] == 0xE6 and command[2] & 0x02:  # INSTALL [for load]: isofs, isocmd, then isoapplet
            sent["loads begun"] += 1
            if sent["loads begun"] == 3:
                raise TransportError("the terminal went away")
        return real(command)

    card.transmit_raw = dies_at_the_third_package  # type: ignore[method-assign]
    request = db.new_request("test-terminal", "install", "isoapplet")
    with Inventory(empty_url, write_behind=True) as ads_inventory, pytest.raises(CardsuiteError):
        PostIssuance(one, db, project, request, inventory=ads_inventory).run(card)
    card.transmit_raw = real  # type: ignore[method-assign]
    ended = db.request(request)
    assert ended is not None and ended.state == "failed", ended
    assert "went away" in (ended.reason or "") or "refuses this step" in (ended.reason or ""), ended
    assert db.query("SELECT busy_request FROM scms_cards WHERE cin = ?", (cin,)) == [(None,)]
    db.execute("DROP TRIGGER refuse ON scms_steps")
    card.reset()
    again = db.new_request("test-terminal", "install", "isoapplet")
    PostIssuance(one, db, project, again).run(card)
    outcomes = {name: outcome for _, name, outcome, _ in db.steps(again)}
    assert outcomes["load isocmd"] == "skipped" and outcomes["load isoapplet"] == "ok", outcomes
    assert card.select(ISO_APPLET).sw == 0x9000
    db.close()


def test_rotate_puts_the_issuer_keys_from_the_token_and_a_stopped_rotation_is_finished(
        scms: System, project: Project, card: SimulatorTransport) -> None:
    cin = card_identity(card)
    db, request, ads = _serve(scms, project, card, "rotate", "")
    db.upsert_card(cin, "SECURED")
    _, outcome = ads.run(card)
    assert "0x01 -> 0x30" in outcome and db.card(cin).key_set == "issuer"  # type: ignore[union-attr]
    audit = db.query("SELECT operation FROM scms_audit WHERE request_id = ? AND key_label = ?",
                     (request, ISSUER_MASTER))
    assert ("wrap",) in audit and ("derive",) in audit
    gp = GlobalPlatform(card)
    gp.select()
    with pytest.raises(CardCryptogramError):  # the transport keys are gone from the card
        gp.open_secure_channel(KeySet.single(DEVELOPMENT_KEY, 0), LEVELS["mac"])
    # the next request opens the card with the issuer keys, diversified in the token
    db, request, ads = _serve(scms, project, card, "install", "isoapplet")
    ads.run(card)
    assert card.select(ISO_APPLET).sw == 0x9000
    # a rotation whose outcome was not recorded (the server stopped after PUT KEY): the next finds which keys
    db.set_key_set(cin, "rotating")
    db, request, ads = _serve(scms, project, card, "rotate", "")
    assert "holds the issuer keys (0x30) already" in ads.run(card)[1]
    assert db.card(cin).key_set == "issuer"  # type: ignore[union-attr]


def test_a_card_served_by_a_running_request_is_refused_to_a_second(scms: System, project: Project,
                                                                   card: SimulatorTransport) -> None:
    cin = card_identity(card)
    db, first, _ = _serve(scms, project, card, "install", "isoapplet")
    db.upsert_card(cin, "SECURED")
    assert db.claim_request(first, "other-server") and db.claim_card(cin, first) is None  # another terminal's
    _, second, ads = _serve(scms, project, card, "install", "isoapplet")
    with pytest.raises(RequestRefused, match=f"being served by request {first}"):
        ads.run(card)
    assert not any(c.startswith("80 50") for _, c, _, _ in db.exchanges(second))
    db.finish_request(first, "failed", "its terminal went away")  # the first is over: the card is free again
    _, third, ads = _serve(scms, project, card, "install", "isoapplet")
    ads.run(card)
    assert db.request(third).state == "done"  # type: ignore[union-attr]
    with pytest.raises(RequestRefused, match="is done already"):
        PostIssuance(scms, db, project, third).run(card)
