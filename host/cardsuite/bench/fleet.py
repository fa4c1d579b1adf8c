"""A fleet-sized inventory (issue 14): 100,000 cards and 1,000,000 events generated inside PostgreSQL
(generate_series, no row crosses the client), then the queries a console makes, each timed and explained:
a card by CIN and by CPLC, a card's page (its record, contents, events and requests) and the statistics
(the SCMS's from the counters its triggers keep: the bulk INSERT here is counted as any change is).
The plans are kept beside the times so that the figures show the index each query used."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from cardsuite.bench.stats import summary
from cardsuite.codec import parse_hex
from cardsuite.deploy.inventory import POSTGRES, Dialect, Inventory
from cardsuite.scms.db import CARD_STATES, Database
from cardsuite.scms.statistics import (
    APPLICATIONS_INSTALLED,
    DAY,
    ISSUANCE_PER_DAY,
    applications_installed,
    issuance_per_day,
)

REPEATS = 25  # each query this many times on cards picked at random: median and p99 (of 25: the second slowest)
GOAL_MS = 200.0
APP_AIDS = ("0011223344552001", "A000000151000001", "F276A288BCFBA69D34F310")


def card_name(i: int) -> str:
    """The i-th generated card's CIN (as gp.client.Cplc.identity spells one: hex)."""
    return f"4790{i:012X}"


def _cplc_sql(expr: str) -> str:
    return f"upper(md5({expr}::text) || md5(({expr} + 1)::text) || substr(md5(({expr} + 2)::text), 1, 20))"


def generate(db: Database, inventory: Inventory, cards: int, events: int) -> None:
    """The fleet, made in the server. Cards are spread over the life cycle, each has a package and an
    application, events spread over 90 days, a tenth of the requests failed with one of three reasons."""
    now = time.time()
    states = "ARRAY[" + ",".join(f"'{s}'" for s in CARD_STATES) + "]"
    aids = "ARRAY[" + ",".join(f"'{a}'" for a in APP_AIDS) + "]"
    actions = "ARRAY['seen','load','install','personalise','deploy']"
    card = "'4790' || lpad(upper(to_hex({i})), 12, '0')"
    with inventory.transaction() as cur:
        cur.execute(f"INSERT INTO inv_cards (card, cplc, atr, card_type, life_cycle, profile, first_seen, last_seen, "
                    f"station) SELECT {card.format(i='i')}, {_cplc_sql('i')}, '3B8A80', 'javacard', 'SECURED', "
                    f"'fleet', {now} - i, {now} - i / 2, 'bench' FROM generate_series(0, {cards - 1}) AS i")
        cur.execute(f"INSERT INTO inv_contents (card, aid, kind, state, parent, detail, updated_at) "
                    f"SELECT {card.format(i='i')}, k.aid, k.kind, k.state, NULL, NULL, {now} FROM generate_series(0, "
                    f"{cards - 1}) AS i, LATERAL (VALUES ('A0000000620001', 'PKG', 'LOADED'), "
                    f"(({aids})[1 + mod(i, {len(APP_AIDS)})], 'APP', 'SELECTABLE')) AS k(aid, kind, state)")
        cur.execute(f"INSERT INTO inv_events (card, at, station, action, target, outcome, detail) "
                    f"SELECT {card.format(i=f'mod(i, {cards})')}, {now} - mod(i, 90) * 86400 - mod(i, 86400), "
                    f"'bench', "
                    f"({actions})[1 + mod(i, 5)], 'fleet', CASE WHEN mod(i, 20) = 0 THEN 'failed' ELSE 'ok' END, NULL "
                    f"FROM generate_series(0, {events - 1}) AS i")
    with db.transaction() as cur:
        cur.execute(f"INSERT INTO scms_cards (cin, order_ref, profile, state, blacklisted, auth_failures, updated_at) "
                    f"SELECT {card.format(i='i')}, 'order-' || i, 'fleet', ({states})[1 + mod(i, {len(CARD_STATES)})], "
                    f"0, 0, {now} FROM generate_series(0, {cards - 1}) AS i")
        failed = "CASE WHEN mod(i, 10) = 0 THEN (ARRAY['card unknown','blacklisted','cryptogram'])[1 + mod(i, 3)] END"
        cur.execute(f"INSERT INTO scms_requests (terminal, action, target, cin, state, reason, reason_kind, "
                    f"claimed_by, created_at, updated_at) SELECT 'kiosk-' || mod(i, 50), 'install', 'isoapplet', "
                    f"{card.format(i='i')}, CASE WHEN mod(i, 10) = 0 THEN 'failed' ELSE 'done' END, {failed}, "
                    f"{failed}, 'bench', "  # the reasons are their own kinds (scms.reasons: no card named)
                    f"{now} - i, {now} - i FROM generate_series(0, {cards - 1}) AS i")
    import psycopg  # the SCMS extra's (a fleet is on PostgreSQL)

    with psycopg.connect(db.url, autocommit=True) as direct:  # VACUUM runs outside a transaction only
        for table in ("inv_cards", "inv_contents", "inv_events", "scms_cards", "scms_requests", *COUNTER_TABLES):
            direct.execute(f"VACUUM ANALYZE {table}")  # statistics and the visibility map, as autovacuum would


def explain(cursor: Any, dialect: Dialect, sql: str, args: tuple = ()) -> str:
    """The database's plan for ``sql``, one line per node (EXPLAIN on PostgreSQL, EXPLAIN QUERY PLAN on SQLite).
    PostgreSQL writes the arguments into the plan: they are put back as $1, $2... so that no card number or CPLC
    lands in fleet.json."""
    prefix = "EXPLAIN " if dialect is POSTGRES else "EXPLAIN QUERY PLAN "
    rows = cursor.fetchall(prefix + sql, args)
    plan = "\n".join(str(row[0] if dialect is POSTGRES else row[-1]) for row in rows)
    for number, value in enumerate(args, 1):
        if isinstance(value, str):
            plan = plan.replace(f"'{value}'", f"${number}")
    return plan


# the statistics' counters: the SCMS's (cardsuite.scms.schema) and the inventory's (deploy.inventory_schema)
COUNTER_TABLES = ("scms_card_counts", "scms_request_counts", "inv_deploy_counts")
CARD_BY_CIN = "SELECT * FROM inv_cards WHERE card = ?"
CARD_BY_CPLC = "SELECT * FROM inv_cards WHERE cplc = ?"
CARD_EVENTS = "SELECT * FROM inv_events WHERE card = ? ORDER BY id"
CARD_REQUESTS = "SELECT * FROM scms_requests WHERE cin = ?"


def _timed(run: Callable[[int], object]) -> dict[str, float]:
    samples = []
    for _ in range(REPEATS):
        i = random.randrange(_timed.cards)  # type: ignore[attr-defined]
        start = time.perf_counter()
        run(i)
        samples.append(time.perf_counter() - start)
    figures = summary(samples, percentiles=(99,))
    return {"median_ms": figures["median_ms"], "p99_ms": figures["p99_ms"]}


def run_fleet(url: str, cards: int = 100_000, events: int = 1_000_000) -> dict[str, object]:
    """Generates the fleet in the (empty) PostgreSQL database at ``url`` and returns the figures."""
    db = Database(url)
    db.create()
    inventory = Inventory(url, station="bench")
    start = time.perf_counter()
    generate(db, inventory, cards, events)
    generated = time.perf_counter() - start
    _timed.cards = cards  # type: ignore[attr-defined]

    def cplc_of(i: int) -> bytes:
        return parse_hex(db.query("SELECT cplc FROM inv_cards WHERE card = ?", (card_name(i),))[0][0], "CPLC")

    cplcs = {i: cplc_of(i) for i in range(0, cards, max(1, cards // 200))}
    pick = sorted(cplcs)

    def page(i: int) -> None:  # what a card's console page reads
        name = card_name(i)
        inventory.card(name)
        inventory.contents(name)
        inventory.events(name)
        db.card(name)
        db.query(CARD_REQUESTS, (name,))

    queries: dict[str, Callable[[int], object]] = {
        "card_by_cin": lambda i: inventory.card(card_name(i)),
        "card_by_cplc": lambda i: inventory.card_with_cplc(cplcs[pick[i % len(pick)]]),
        "card_page": page,
        "cards_by_state": lambda i: db.cards_by_state(),
        "issuance_per_day": lambda i: issuance_per_day(inventory),
        "applications_installed": lambda i: applications_installed(inventory),
        "scms_statistics": lambda i: db.statistics(),  # card states, requests, failures by reason
    }
    timings = {name: _timed(run) for name, run in queries.items()}
    with inventory.transaction() as cur:
        since = time.time() - 30 * DAY
        plans = {
            "card_by_cin": explain(cur, POSTGRES, CARD_BY_CIN, (card_name(7),)),
            "card_by_cplc": explain(cur, POSTGRES, CARD_BY_CPLC, (cplcs[pick[1]].hex().upper(),)),
            "card_events": explain(cur, POSTGRES, CARD_EVENTS, (card_name(7),)),
            "card_requests": explain(cur, POSTGRES, CARD_REQUESTS, (card_name(7),)),
            "applications_installed": explain(cur, POSTGRES, APPLICATIONS_INSTALLED),
        }
        # the counters are a few rows however large the fleet (one per state; one per day, action, state and
        # failure reason; one per day of deploys), which PostgreSQL rightly reads whole: their plans are kept
        # apart from index_used
        counter_rows = {table: int(cur.fetchall(f"SELECT COUNT(*) FROM {table}")[0][0]) for table in COUNTER_TABLES}
        counter_plans = {
            "cards_by_state": explain(cur, POSTGRES, "SELECT state, n FROM scms_card_counts ORDER BY state"),
            "issuance_per_day": explain(cur, POSTGRES, ISSUANCE_PER_DAY, (int(since // DAY),)),
            "statistics_requests": explain(cur, POSTGRES, "SELECT action, state, SUM(n) FROM scms_request_counts "
                                           "WHERE day >= ? GROUP BY action, state", (0,)),
            "statistics_failures": explain(cur, POSTGRES, "SELECT reason, SUM(n) FROM scms_request_counts WHERE "
                                           "state = 'failed' AND day >= ? GROUP BY reason", (0,)),
        }
    inventory.close()
    db.close()
    slowest = max(t["p99_ms"] for t in timings.values())
    return {"cards": cards, "events": events, "generate_s": round(generated, 1), "repeats": REPEATS,
            "goal_ms": GOAL_MS, "all_under_goal": slowest < GOAL_MS, "slowest_ms": slowest, "queries": timings,
            "plans": plans, "counter_plans": counter_plans, "counter_rows": counter_rows,
            "index_used": {name: "Index" in plan for name, plan in plans.items()}}
