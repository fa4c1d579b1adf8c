"""The console's fleet queries on SQLite and PostgreSQL: a card by CIN and by CPLC, its events, and the
statistics, each answered from an index (the plan names it; on PostgreSQL with sequential scans priced out,
as a small table would otherwise be read whole) and with the right figures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cardsuite.bench.fleet import CARD_BY_CPLC, CARD_EVENTS, explain
from cardsuite.deploy.inventory import POSTGRES, Inventory
from cardsuite.scms import statistics
from cardsuite.scms.db import Database

CPLC = bytes(range(42))


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, Inventory]]:
    if request.param == "sqlite":
        db, inventory = Database(f"sqlite:///{tmp_path / 'scms.db'}"), Inventory(f"sqlite:///{tmp_path / 'inv.db'}")
    else:
        url = request.getfixturevalue("postgres_url")
        db, inventory = Database(url), Inventory(url)
        with inventory.transaction() as cur:  # the server outlives a test
            for table in ("inv_cards", "inv_contents", "inv_events", "inv_keys"):
                cur.execute(f"DELETE FROM {table}")
    db.create()
    with db.transaction() as cur:
        cur.execute("DELETE FROM scms_requests")
    yield db, inventory
    inventory.close()
    db.close()


def _plan(inventory: Inventory, sql: str, args: tuple = ()) -> str:
    with inventory.transaction() as cur:
        if inventory.dialect is POSTGRES:
            cur.execute("SET LOCAL enable_seqscan = off")
        return explain(cur, inventory.dialect, sql, args)


def test_fleet_lookups_and_statistics_use_indexes(stores: tuple[Database, Inventory]) -> None:
    db, inventory = stores
    for i in range(5):
        inventory.record_card(f"card-{i}", cplc=CPLC[:-1] + bytes([i]), card_type="simulated")
        inventory.record_event(f"card-{i}", "deploy", "ok", "sim-suite")
    inventory.record_event("card-1", "deploy", "failed", "sim-suite")
    with inventory.transaction() as cur:
        cur.execute("INSERT INTO inv_contents (card, aid, kind, state, updated_at) VALUES "
                    "('card-1', 'A1', 'APP', 'SELECTABLE', 0), ('card-2', 'A1', 'APP', 'SELECTABLE', 0), "
                    "('card-2', 'P1', 'PKG', 'LOADED', 0)")
    failed = db.new_request("t", "install", "isoapplet")
    db.finish_request(failed, "failed", "card unknown")

    card = inventory.card("card-3")
    assert card is not None and card.card == "card-3"
    by_cplc = inventory.card_with_cplc(CPLC[:-1] + bytes([4]))
    assert by_cplc is not None and by_cplc.card == "card-4"
    assert inventory.card("card-9") is None and inventory.card_with_cplc(bytes(42)) is None
    assert sum(statistics.issuance_per_day(inventory).values()) == 5
    assert statistics.applications_installed(inventory) == {"A1": 2}
    assert db.statistics()["failures"] == {"card unknown": 1}

    since = time.time() - 30 * statistics.DAY
    plan = _plan(inventory, CARD_BY_CPLC, (CPLC.hex().upper(),))
    assert "inv_cards_cplc" in plan and CPLC.hex().upper() not in plan  # fleet.json names no card's CPLC
    plan = _plan(inventory, CARD_EVENTS, ("card-1",))
    assert "inv_events_card" in plan and "card-1" not in plan  # nor its card number
    plan = _plan(inventory, statistics.ISSUANCE_PER_DAY, (int(since // statistics.DAY),))
    assert "inv_deploy_counts" in plan and "inv_events" not in plan  # the counters, not the events
    assert "inv_contents_kind" in _plan(inventory, statistics.APPLICATIONS_INSTALLED)
