"""The inventory's schema as migrations (cardsuite.deploy.migrations: each one transaction, its version recorded
in ``inv_schema``, under an advisory lock of its own on PostgreSQL, where the inventory may share the SCMS's
database). An inventory made before versions (every one before migration 2) is at 0: migration 1 is the
tables as they were made, IF NOT EXISTS.

Migration 2: issuance per day (cardsuite.scms.statistics) as a counter that triggers keep in the transaction
of every event written, as the SCMS's statistics are (cardsuite.scms.schema): ``inv_deploy_counts`` holds the
deploys done (events ``deploy``/``ok``) per UTC day of ``at``, so the statistic reads one row per day, not
the events. PostgreSQL counts INSERT and DELETE per statement from their transition tables (the fleet's
1,000,000-event bulk INSERT adds one count per day), UPDATE per row when the event's bucket changes.
"""

from __future__ import annotations

from typing import Any

from cardsuite.deploy.migrations import Migration, Schema

TABLES_V1 = (
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


ISSUED = "{row}.action = 'deploy' AND {row}.outcome = 'ok'"  # an event counted in inv_deploy_counts
SQLITE_DAY = "CAST({row}.at / 86400 AS INTEGER)"
PG_DAY = "floor({row}.at / 86400)::integer"
_SQLITE_COUNT = ("INSERT INTO inv_deploy_counts (day, n) VALUES ({day}, 1) "
                 "ON CONFLICT (day) DO UPDATE SET n = n + 1;").format(day=SQLITE_DAY.format(row="NEW"))
_SQLITE_UNCOUNT = "UPDATE inv_deploy_counts SET n = n - 1 WHERE day = {day};".format(day=SQLITE_DAY.format(row="OLD"))
SQLITE_COUNTERS = (
    f"CREATE TRIGGER IF NOT EXISTS inv_events_counted_insert AFTER INSERT ON inv_events "
    f"WHEN {ISSUED.format(row='NEW')} BEGIN {_SQLITE_COUNT} END",
    f"CREATE TRIGGER IF NOT EXISTS inv_events_counted_delete AFTER DELETE ON inv_events "
    f"WHEN {ISSUED.format(row='OLD')} BEGIN {_SQLITE_UNCOUNT} END",
    # an update out of the bucket and into one: two triggers, each doing its half
    f"CREATE TRIGGER IF NOT EXISTS inv_events_uncounted_update AFTER UPDATE OF action, outcome, at ON inv_events "
    f"WHEN {ISSUED.format(row='OLD')} BEGIN {_SQLITE_UNCOUNT} END",
    f"CREATE TRIGGER IF NOT EXISTS inv_events_counted_update AFTER UPDATE OF action, outcome, at ON inv_events "
    f"WHEN {ISSUED.format(row='NEW')} BEGIN {_SQLITE_COUNT} END",
)
_PG_GROUPED = (f"SELECT {PG_DAY.format(row='t')} AS day, COUNT(*) AS n FROM {{table}} AS t "
               f"WHERE {ISSUED.format(row='t')} GROUP BY 1")
POSTGRES_COUNTERS = (
    f"""CREATE OR REPLACE FUNCTION inv_events_added_or_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO inv_deploy_counts AS c (day, n) {_PG_GROUPED.format(table='added')} ORDER BY 1
            ON CONFLICT (day) DO UPDATE SET n = c.n + excluded.n;
        ELSE
            UPDATE inv_deploy_counts AS c SET n = c.n - r.n FROM ({_PG_GROUPED.format(table='removed')}) AS r
            WHERE c.day = r.day;
        END IF;
        RETURN NULL;
    END $$""",
    f"""CREATE OR REPLACE FUNCTION inv_event_moved() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF {ISSUED.format(row='OLD')} THEN
            UPDATE inv_deploy_counts SET n = n - 1 WHERE day = {PG_DAY.format(row='OLD')};
        END IF;
        IF {ISSUED.format(row='NEW')} THEN
            INSERT INTO inv_deploy_counts AS c (day, n) VALUES ({PG_DAY.format(row='NEW')}, 1)
            ON CONFLICT (day) DO UPDATE SET n = c.n + 1;
        END IF;
        RETURN NULL;
    END $$""",
    "CREATE OR REPLACE TRIGGER inv_events_counted_insert AFTER INSERT ON inv_events REFERENCING NEW TABLE AS added "
    "FOR EACH STATEMENT EXECUTE FUNCTION inv_events_added_or_removed()",
    "CREATE OR REPLACE TRIGGER inv_events_counted_delete AFTER DELETE ON inv_events REFERENCING OLD TABLE AS removed "
    "FOR EACH STATEMENT EXECUTE FUNCTION inv_events_added_or_removed()",
    "CREATE OR REPLACE TRIGGER inv_events_counted_update AFTER UPDATE OF action, outcome, at ON inv_events "
    f"FOR EACH ROW WHEN (({ISSUED.format(row='OLD')}, {PG_DAY.format(row='OLD')}) IS DISTINCT FROM "
    f"({ISSUED.format(row='NEW')}, {PG_DAY.format(row='NEW')})) EXECUTE FUNCTION inv_event_moved()",
)


def _tables(cur: Any, sqlite: bool) -> None:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if sqlite else "BIGSERIAL PRIMARY KEY"
    for statement in TABLES_V1:
        cur.execute(statement.format(serial=serial))


def _deploy_counts(cur: Any, sqlite: bool) -> None:
    cur.execute("CREATE TABLE inv_deploy_counts (day INTEGER PRIMARY KEY, n BIGINT NOT NULL)")
    day = (SQLITE_DAY if sqlite else PG_DAY).format(row="inv_events")
    cur.execute(f"INSERT INTO inv_deploy_counts (day, n) SELECT {day}, COUNT(*) FROM inv_events "
                f"WHERE {ISSUED.format(row='inv_events')} GROUP BY 1")
    for statement in SQLITE_COUNTERS if sqlite else POSTGRES_COUNTERS:
        cur.execute(statement)


SCHEMA = Schema("the inventory", "inv_schema", int.from_bytes(b"CSIV", "big"), (
    Migration(1, "cards, contents, keys and events", _tables),
    Migration(2, "deploys done per UTC day as a counter kept by triggers (issuance per day)", _deploy_counts),
))
