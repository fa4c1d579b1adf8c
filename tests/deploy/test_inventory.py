"""The card inventory on SQLite and on a real local PostgreSQL server (Debian's postgresql package, started
for the session in a temporary directory): the same schema and SQL on both; a card recorded by its CPLC
identity, seen again without losing when it was first seen; its contents replaced as a whole; events in
order; a whole deploy recorded into PostgreSQL; bad URLs as clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cardsuite.deploy.deployer import Deployer, DeployOptions
from cardsuite.deploy.inventory import COPY_FROM_ROWS, Inventory, InventoryError, settle_writes
from cardsuite.deploy.profiles import load_card_profile
from cardsuite.gp.client import Application, CardContents, LoadFile
from cardsuite.gp.guard import BrickGuard
from cardsuite.project import Project
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport

h = bytes.fromhex
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def inventory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Inventory]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'inventory.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    with Inventory(url, station="station-1") as inv:
        with inv.transaction() as cur:  # the server outlives a test: start from empty tables
            for table in ("inv_events", "inv_contents", "inv_cards"):
                cur.execute(f"DELETE FROM {table}")
        yield inv


REGISTRY = CardContents(
    Application(h("A000000151000000"), 0x01, h("9EFE80"), "ISD"),
    [Application(h("0011223344552001"), 0x07, h("00"), "APP", h("00112233445520")),
     Application(h("F0636172641001"), 0x07, h("04"), "APP", h("F06361726410"))],
    [LoadFile(h("001122334455"), 0x01, h("0100")),
     LoadFile(h("00112233445520"), 0x01, h("0100"), (h("0011223344552001"),))],
)


def test_cards_contents_and_events(inventory: Inventory) -> None:
    card = "cplc:4790503212345678ABCD"
    inventory.record_card(card, cplc=bytes(42), atr=h("3B8A80"), card_type="simulated")
    [first] = inventory.cards()
    assert (first.card, first.cplc, first.atr, first.life_cycle) == (card, "00" * 42, "3B8A80", None)

    inventory.record_card(card, registry=REGISTRY, profile="sim-suite")
    [seen] = inventory.cards()
    assert seen.first_seen == first.first_seen and seen.last_seen >= first.last_seen
    assert (seen.cplc, seen.card_type, seen.life_cycle, seen.profile, seen.station) == (
        "00" * 42, "simulated", "OP_READY", "sim-suite", "station-1")  # kept what this sighting did not say
    contents = [(c.kind, c.aid, c.state, c.parent, c.detail) for c in inventory.contents(card)]
    assert contents == [
        ("APP", "0011223344552001", "SELECTABLE", "00112233445520", None),
        ("APP", "F0636172641001", "SELECTABLE", "F06361726410", "CardReset"),
        ("PKG", "001122334455", "LOADED", None, "v1.0"),
        ("PKG", "00112233445520", "LOADED", None, "v1.0 0011223344552001")]

    emptied = CardContents(REGISTRY.isd, [], [REGISTRY.load_files[0]])
    inventory.record_card(card, registry=emptied)
    assert [(c.kind, c.aid) for c in inventory.contents(card)] == [("PKG", "001122334455")]

    inventory.record_event(card, "load", "ok", "isofs 001122334455", "29 blocks")
    inventory.record_event(card, "install", "failed", "wallet F0636172641001", "6985 (it's refused)")
    inventory.record_event("cplc:other", "seen", "ok")
    events = inventory.events(card)
    assert [(e.action, e.outcome, e.target, e.station) for e in events] == [
        ("load", "ok", "isofs 001122334455", "station-1"),
        ("install", "failed", "wallet F0636172641001", "station-1")]
    assert events[0].id < events[1].id and events[1].detail == "6985 (it's refused)"
    assert len(inventory.events()) == 3


def test_a_deploy_recorded_in_postgresql(postgres_url: str, project: Project, tmp_path: Path) -> None:
    transport = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig("scp03"))
    transport.connect()
    try:
        with Inventory(postgres_url, station="pg-station") as inventory:
            profile = load_card_profile(ROOT / "profiles" / "cards" / "sim-suite.toml")
            options = DeployOptions(wallet_db=tmp_path / "w.db", env={"CARDSUITE_PIN": "2468",
                                                                      "CARDSUITE_PUK": "13572468"})
            result = Deployer(project, profile, transport, inventory, BrickGuard(tmp_path / "g.db"),
                              options=options).run()
            card = inventory.card(result.plan.card)
            assert card is not None and card.profile == "sim-suite" and card.station == "pg-station"
            kinds = [c.kind for c in inventory.contents(result.plan.card)]
            assert kinds.count("PKG") == 8 and kinds.count("APP") == 5  # and the card's own SD package
            actions = [e.action for e in inventory.events(result.plan.card) if e.outcome == "ok"]
            assert actions.count("load") == 7 and actions.count("install") == 5 and actions[-1] == "deploy"
    finally:
        transport.disconnect()


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://x/y", "use sqlite:///path or postgresql://"),
    ("sqlite:///", "names no file"),
    ("postgresql://nobody@127.0.0.1:1/none", "cannot connect to the inventory database"),
])
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(InventoryError, match=message):
        Inventory(url)


_EVENT = "INSERT INTO inv_events (card, at, station, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)"


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("rows", [COPY_FROM_ROWS - 1, COPY_FROM_ROWS, 5 * COPY_FROM_ROWS])
def test_write_behind_rows_land_whole_and_in_order_through_copy_or_executemany(empty_url: str, rows: int) -> None:
    """Many rows of a plain INSERT committed behind go in as COPY (from COPY_FROM_ROWS on), fewer through
    executemany: either way each row lands with its values as given (None, a fraction, text with a tab, a
    newline and a backslash, COPY's own separators), between the statements before and after them, and one
    row refused refuses the whole transaction."""
    import psycopg

    made = [(f"cplc:{i}", 1.25 + i, "bench", "load", "pkg\t\\x", "ok", None if i % 2 else "two\nlines")
            for i in range(rows)]
    with psycopg.connect(empty_url, autocommit=True) as other:
        behind = Inventory(empty_url, write_behind=True)
        try:
            with behind.transaction(write_only=True) as cur:
                cur.execute(_EVENT, ("cplc:first", 1.0, "bench", "load", "before", "ok", None))
                cur.executemany(_EVENT, made)
                cur.executemany(_EVENT, made)  # two in a row: from COPY_FROM_ROWS on, two COPYs back to back
                cur.execute(_EVENT, ("cplc:last", 2.0, "bench", "load", "after", "ok", None))
            settle_writes()
            got = other.execute("SELECT card, at, station, action, target, outcome, detail FROM inv_events "
                                "ORDER BY id").fetchall()
            assert got[0][4] == "before" and got[-1][4] == "after"
            assert got[1:-1] == made + made

            other.execute("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.card = 'cplc:0' THEN "
                          "RAISE EXCEPTION 'the test refuses it'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
            other.execute("CREATE TRIGGER refuse BEFORE INSERT ON inv_events FOR EACH ROW EXECUTE FUNCTION refuse()")
            with behind.transaction(write_only=True) as cur:
                cur.execute(_EVENT, ("cplc:first", 3.0, "bench", "load", "refused with the rows", "ok", None))
                cur.executemany(_EVENT, made)
            with pytest.raises(InventoryError, match="the test refuses it"):
                settle_writes()
            assert other.execute("SELECT COUNT(*) FROM inv_events").fetchone() == (2 * rows + 2,)  # none of them
            assert behind.idle()  # rolled back: the connection fit for the next user
        finally:
            behind.close()


@pytest.mark.parametrize("empty_url", ["postgresql"], indirect=True)
def test_write_behind_commits_while_the_caller_goes_on_and_its_next_operation_waits(empty_url: str) -> None:
    """A write-only transaction of a write-behind inventory returns before its commit (held here by an
    advisory lock its trigger waits for: an inventory committing at once would time out); the thread's next
    read, on any connection, waits for the commit and so reads it. One made while a commit is under way is
    committed after it without the caller waiting; a refused commit is raised by the next read, once, and
    nothing made after it is committed; close waits for the last one."""
    import psycopg

    lock = 4242
    with psycopg.connect(empty_url, autocommit=True) as holder:
        Inventory(empty_url).close()  # the schema
        holder.execute("CREATE FUNCTION held() RETURNS trigger AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared("
                       f"{lock}); IF NEW.target = 'refused' THEN RAISE EXCEPTION 'the test refuses it'; END IF; "
                       "RETURN NEW; END $$ LANGUAGE plpgsql")
        holder.execute("CREATE TRIGGER held BEFORE INSERT ON inv_events FOR EACH ROW EXECUTE FUNCTION held()")
        behind, reader = Inventory(empty_url, write_behind=True), Inventory(empty_url)
        try:
            behind._db.execute("SET lock_timeout = '20s'")  # a commit waited for here fails after that
            holder.execute(f"SELECT pg_advisory_lock({lock})")
            behind.record_event("cplc:1", "load", "ok", "first")
            behind.record_event("cplc:1", "load", "ok", "second")  # the first still under way: chained
            seen = holder.execute("SELECT COUNT(*) FROM inv_events").fetchone()
            holder.execute(f"SELECT pg_advisory_unlock({lock})")
            assert seen == (0,)  # returned, not committed yet
            assert [e.target for e in reader.events("cplc:1")] == ["first", "second"]  # the read waited

            holder.execute(f"SELECT pg_advisory_lock({lock})")
            behind.record_event("cplc:1", "load", "ok", "refused")
            behind.record_event("cplc:1", "load", "ok", "after it")  # made while the refused one is under way
            holder.execute(f"SELECT pg_advisory_unlock({lock})")
            with pytest.raises(InventoryError, match="the test refuses it"):
                behind.events("cplc:1")
            behind.record_event("cplc:1", "load", "ok", "last")  # raised once: the connection goes on
            behind.close()
            targets = holder.execute("SELECT target FROM inv_events ORDER BY id").fetchall()  # no wait of ours
            assert targets == [("first",), ("second",), ("last",)]  # nothing after the refused one
        finally:
            behind.close()
            reader.close()
