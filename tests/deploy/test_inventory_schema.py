"""The inventory's schema migrations on SQLite and PostgreSQL (a database of its own per test): an inventory
made by the unversioned schema (commit 6a9082a: its statements below, frozen) upgraded with its rows, its
deploys counted per day; the counter following every write; a newer inventory refused; and several stations
opening a new PostgreSQL inventory at once (concurrent CREATE TABLE IF NOT EXISTS failed there)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from cardsuite.deploy.inventory import Inventory, InventoryError
from cardsuite.deploy.inventory_schema import SCHEMA
from cardsuite.scms import statistics
from support.threads import at_once

OLD_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS inv_cards (
        card        TEXT PRIMARY KEY,        -- CPLC identity (or reader + ATR when the card gives no CPLC)
        cplc        TEXT,                    -- the whole CPLC, hex
        atr         TEXT,
        card_type   TEXT,
        life_cycle  TEXT,                    -- the ISD's card life cycle (OP_READY … TERMINATED)
        profile     TEXT,                    -- the last profile deployed
        first_seen  DOUBLE PRECISION NOT NULL,
        last_seen   DOUBLE PRECISION NOT NULL,
        station     TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS inv_contents (
        card        TEXT NOT NULL,
        aid         TEXT NOT NULL,
        kind        TEXT NOT NULL,           -- PKG (load file), APP, SSD
        state       TEXT NOT NULL,
        parent      TEXT,                    -- an application's load file
        detail      TEXT,                    -- a package's version and modules, an application's privileges
        updated_at  DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (card, aid, kind)
    )""",
    """CREATE TABLE IF NOT EXISTS inv_keys (
        card        TEXT PRIMARY KEY,
        kvn         INTEGER NOT NULL,        -- the key version the card's keys have (as last authenticated)
        key_set     TEXT NOT NULL,           -- which keys: transport, issuer, or rotating (PUT KEY sent, not known)
        updated_at  DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS inv_events (
        id          {serial},
        card        TEXT NOT NULL,
        at          DOUBLE PRECISION NOT NULL,
        station     TEXT NOT NULL,
        action      TEXT NOT NULL,           -- seen, load, install, personalise, deploy, …
        target      TEXT,
        outcome     TEXT NOT NULL,           -- ok, skipped, failed, started, planned
        detail      TEXT
    )""",
    # a fleet's lookups on an index (a card by its CPLC, its history, what is installed where: the SCMS console)
    "CREATE INDEX IF NOT EXISTS inv_cards_cplc ON inv_cards (cplc)",
    "CREATE INDEX IF NOT EXISTS inv_contents_kind ON inv_contents (kind, aid)",
    "CREATE INDEX IF NOT EXISTS inv_events_card ON inv_events (card, id)",
    "CREATE INDEX IF NOT EXISTS inv_events_action ON inv_events (action, outcome, at)",
)

DAY = 86400
NOW = 1_795_000_000.0  # 2026-11-18 UTC
OLD_EVENTS = [("card-1", NOW, "deploy", "ok"), ("card-2", NOW + 60, "deploy", "ok"),
              ("card-3", NOW - DAY, "deploy", "ok"), ("card-3", NOW - DAY, "deploy", "failed"),
              ("card-1", NOW, "load", "ok")]


def _make_old(url: str) -> None:
    """The old inventory with its rows, through the old statements on a plain connection."""
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if url.startswith("sqlite") else "BIGSERIAL PRIMARY KEY"
    statements = [s.format(serial=serial) for s in OLD_SCHEMA] + [
        f"INSERT INTO inv_events (card, at, station, action, target, outcome) VALUES ('{card}', {at}, 'old', "
        f"'{action}', 'sim-suite', '{outcome}')" for card, at, action, outcome in OLD_EVENTS]
    if url.startswith("sqlite:///"):
        import sqlite3

        db = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        db.execute(f"PRAGMA application_id = {int.from_bytes(b'CSIV', 'big')}")  # the old code marked it too
        for statement in statements:
            db.execute(statement)
        db.close()
        return
    import psycopg

    with psycopg.connect(url) as conn, conn.transaction():
        for statement in statements:
            conn.execute(statement)


def _counted(inventory: Inventory) -> dict[int, int]:
    with inventory.transaction() as cur:
        return {int(d): int(n) for d, n in cur.fetchall("SELECT day, n FROM inv_deploy_counts WHERE n > 0")}


def _from_rows(inventory: Inventory) -> dict[int, int]:
    """What the counter must say, counted from the events themselves."""
    days: dict[int, int] = {}
    with inventory.transaction() as cur:
        for (at,) in cur.fetchall("SELECT at FROM inv_events WHERE action = 'deploy' AND outcome = 'ok'"):
            days[int(at // DAY)] = days.get(int(at // DAY), 0) + 1
    return days


def test_an_old_inventory_is_upgraded_and_its_deploys_counted(empty_url: str) -> None:
    _make_old(empty_url)
    with Inventory(empty_url, station="new") as inventory:
        with inventory.transaction() as cur:
            assert SCHEMA.recorded(cur, inventory.dialect.name == "sqlite") == SCHEMA.version
            assert cur.fetchall("SELECT COUNT(*) FROM inv_events")[0][0] == len(OLD_EVENTS)
        day = int(NOW // DAY)
        assert _counted(inventory) == {day: 2, day - 1: 1}
        assert statistics.issuance_per_day(inventory, days=3, now=NOW) == {day - 1: 1, day: 2}
        inventory.record_event("card-4", "deploy", "ok", "sim-suite")  # now: counted by the trigger
        assert statistics.issuance_per_day(inventory, days=0) == {int(time.time() // DAY): 1}
        assert [e.card for e in inventory.events("card-1")] == ["card-1", "card-1"]  # the old rows kept
    with Inventory(empty_url, read_only=True) as again:  # opened again: nothing to do, nothing changed
        assert _counted(again) == _from_rows(again)


def test_the_deploy_counter_follows_every_write(empty_url: str) -> None:
    with Inventory(empty_url, station="s") as inventory:
        for card in ("a", "b", "c"):
            inventory.record_event(card, "deploy", "ok")
        inventory.record_event("a", "deploy", "failed")
        inventory.record_event("a", "load", "ok")
        with inventory.transaction() as cur:  # plain SQL as any writer: a bulk insert, updates, a delete
            cur.execute("INSERT INTO inv_events (card, at, station, action, outcome) SELECT card, at - 2 * 86400, "
                        "station, action, outcome FROM inv_events")
            cur.execute("UPDATE inv_events SET outcome = 'ok' WHERE outcome = 'failed'")
            cur.execute("UPDATE inv_events SET at = at - 86400 WHERE card = 'b'")
            cur.execute("UPDATE inv_events SET action = 'seen' WHERE card = 'c' AND action = 'deploy'")
            cur.execute("DELETE FROM inv_events WHERE card = 'a' AND action = 'load'")
        assert _counted(inventory) == _from_rows(inventory) and sum(_counted(inventory).values()) == 6
        with inventory.transaction() as cur:
            cur.execute("DELETE FROM inv_events")
        assert _counted(inventory) == {}


def test_a_newer_inventory_is_refused(empty_url: str) -> None:
    Inventory(empty_url).close()
    with Inventory(empty_url) as inventory, inventory.transaction() as cur:
        cur.execute("INSERT INTO inv_schema (version, summary, applied_at) VALUES (?, 'later', 0)",
                    (SCHEMA.version + 1,))
    for read_only in (False, True):
        with pytest.raises(InventoryError) as refused:
            Inventory(empty_url, read_only=read_only)
        assert str(refused.value) == (f"the inventory is at schema version {SCHEMA.version + 1}, newer than this "
                                      f"cardsuite's {SCHEMA.version}: run a cardsuite that knows it (or restore "
                                      "the database)")


def test_stations_opening_a_new_inventory_at_once(empty_url: str) -> None:
    barrier, errors = threading.Barrier(8), []

    def station(index: int) -> None:
        barrier.wait()
        try:
            with Inventory(empty_url, station=f"station-{index}") as inventory:
                inventory.record_event(f"card-{index}", "deploy", "ok")
        except InventoryError as exc:
            errors.append(str(exc))

    at_once(station, ((i,) for i in range(8)))
    assert not errors
    with Inventory(empty_url) as inventory:
        assert sum(_counted(inventory).values()) == 8
        with inventory.transaction() as cur:
            assert cur.fetchall("SELECT COUNT(*) FROM inv_schema")[0][0] == SCHEMA.version


def test_an_inventory_file_of_the_old_code_keeps_its_mark(tmp_path: Path) -> None:
    """The new tables are ours too: a migrated file opens again (its table set is still a cardsuite one)."""
    url = f"sqlite:///{tmp_path / 'inventory.db'}"
    _make_old(url)
    Inventory(url).close()
    with Inventory(url, read_only=True) as inventory:
        assert len(inventory.events()) == len(OLD_EVENTS)
