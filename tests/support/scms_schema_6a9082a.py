"""The SCMS database as commit 6a9082a made it (the last schema without a recorded version): its statements
written out here, verbatim, as the fixture of an old database that the migrations (cardsuite.scms.db) must
upgrade without losing a row or a count. Frozen: never edit these to follow the code."""

from __future__ import annotations

import sqlite3

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS scms_users (
        name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS scms_terminals (
        name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, created_at DOUBLE PRECISION NOT NULL,
        revoked_at DOUBLE PRECISION)""",
    # CMS: a card from its order to SECURED and after; cin is the CPLC identity (gp.client.Cplc.identity)
    """CREATE TABLE IF NOT EXISTS scms_cards (
        cin TEXT PRIMARY KEY, order_ref TEXT, profile TEXT, state TEXT NOT NULL, blacklisted INTEGER NOT NULL
        DEFAULT 0, auth_failures INTEGER NOT NULL DEFAULT 0, updated_at DOUBLE PRECISION NOT NULL,
        key_set TEXT NOT NULL DEFAULT 'transport',  -- transport, rotating (PUT KEY sent), issuer
        busy_request INTEGER                        -- the request serving the card now (claim_card)
        )""",
    "CREATE INDEX IF NOT EXISTS scms_cards_state ON scms_cards (state)",
    "CREATE INDEX IF NOT EXISTS scms_cards_order ON scms_cards (order_ref)",
    """CREATE TABLE IF NOT EXISTS scms_orders (
        ref TEXT PRIMARY KEY, batch TEXT NOT NULL, profile TEXT NOT NULL, holder TEXT NOT NULL,
        state TEXT NOT NULL, cin TEXT, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS scms_orders_batch ON scms_orders (batch, state)",
    # ADS: post-issuance requests, their steps and APDU exchanges (masked as traces are)
    """CREATE TABLE IF NOT EXISTS scms_requests (
        id {serial}, terminal TEXT NOT NULL, action TEXT NOT NULL, target TEXT, cin TEXT, state TEXT NOT NULL,
        reason TEXT, claimed_by TEXT, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)""",
    # (a database made before the relay order moved to the link has a relay_seq column too: unused, defaulted)
    "CREATE INDEX IF NOT EXISTS scms_requests_state ON scms_requests (state, created_at)",
    "CREATE INDEX IF NOT EXISTS scms_requests_cin ON scms_requests (cin)",
    """CREATE TABLE IF NOT EXISTS scms_steps (
        id {serial}, request_id INTEGER NOT NULL, number INTEGER NOT NULL, name TEXT NOT NULL,
        outcome TEXT NOT NULL, detail TEXT, at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS scms_steps_request ON scms_steps (request_id, number)",
    """CREATE TABLE IF NOT EXISTS scms_exchanges (
        id {serial}, request_id INTEGER NOT NULL, seq INTEGER NOT NULL, command TEXT NOT NULL, response TEXT NOT NULL,
        sw INTEGER NOT NULL, seconds DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS scms_exchanges_request ON scms_exchanges (request_id, seq)",
    # KMS: every key use (operation, key label, what for; never a value)
    """CREATE TABLE IF NOT EXISTS scms_audit (
        id {serial}, at DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL, operation TEXT NOT NULL, key_label TEXT,
        request_id INTEGER, detail TEXT)""",
    "CREATE INDEX IF NOT EXISTS scms_audit_at ON scms_audit (at)",
    "CREATE INDEX IF NOT EXISTS scms_audit_request ON scms_audit (request_id)",
    # the console (cardsuite.scms.console): sessions as rows (several servers), the id stored as its SHA-256;
    # its pages' keyset pagination, filters and statistics each on an index
    """CREATE TABLE IF NOT EXISTS scms_sessions (
        id TEXT PRIMARY KEY, user_name TEXT NOT NULL, csrf TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS scms_sessions_expiry ON scms_sessions (expires_at)",
    "CREATE INDEX IF NOT EXISTS scms_cards_state_cin ON scms_cards (state, cin)",
    "CREATE INDEX IF NOT EXISTS scms_requests_state_time ON scms_requests (state, updated_at)",
    "CREATE INDEX IF NOT EXISTS scms_requests_created ON scms_requests (created_at)",  # statistics(since)
    "CREATE INDEX IF NOT EXISTS scms_audit_operation ON scms_audit (operation, id)",
    "CREATE INDEX IF NOT EXISTS scms_audit_actor ON scms_audit (actor, id)",
)

# Maintained counters (Database.statistics). The request's bucket: the UTC day it reached its state
# (updated_at), its action and state, and the reason of a failed one ('' otherwise: a done request's reason is
# its outcome, one text per card). A change moves the request from its old bucket to its new one.
COUNTER_TABLES = (
    "CREATE TABLE IF NOT EXISTS scms_card_counts (state TEXT PRIMARY KEY, n BIGINT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS scms_request_counts (
        day INTEGER NOT NULL, action TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, n BIGINT NOT NULL,
        PRIMARY KEY (day, action, state, reason))""",
    "CREATE INDEX IF NOT EXISTS scms_request_counts_failed ON scms_request_counts (state, day, reason)",
)
_SQLITE_DAY = "CAST({row}.updated_at / 86400 AS INTEGER)"
_SQLITE_REASON = "CASE WHEN {row}.state = 'failed' THEN COALESCE({row}.reason, '') ELSE '' END"
_SQLITE_COUNT_CARD = ("INSERT INTO scms_card_counts (state, n) VALUES (NEW.state, 1) "
                      "ON CONFLICT (state) DO UPDATE SET n = n + 1;")
_SQLITE_UNCOUNT_CARD = "UPDATE scms_card_counts SET n = n - 1 WHERE state = OLD.state;"
_SQLITE_COUNT_REQUEST = (f"INSERT INTO scms_request_counts (day, action, state, reason, n) VALUES "
                         f"({_SQLITE_DAY.format(row='NEW')}, NEW.action, NEW.state, "
                         f"{_SQLITE_REASON.format(row='NEW')}, 1) "
                         f"ON CONFLICT (day, action, state, reason) DO UPDATE SET n = n + 1;")
_SQLITE_UNCOUNT_REQUEST = (f"UPDATE scms_request_counts SET n = n - 1 WHERE day = {_SQLITE_DAY.format(row='OLD')} "
                           f"AND action = OLD.action AND state = OLD.state "
                           f"AND reason = {_SQLITE_REASON.format(row='OLD')};")
_SQLITE_MOVED = " OR ".join(f"{part.format(row='OLD')} IS NOT {part.format(row='NEW')}"
                            for part in ("{row}.action", "{row}.state", _SQLITE_DAY, _SQLITE_REASON))
SQLITE_COUNTERS = (
    f"CREATE TRIGGER IF NOT EXISTS scms_cards_counted_insert AFTER INSERT ON scms_cards BEGIN "
    f"{_SQLITE_COUNT_CARD} END",
    f"CREATE TRIGGER IF NOT EXISTS scms_cards_counted_update AFTER UPDATE OF state ON scms_cards "
    f"WHEN OLD.state IS NOT NEW.state BEGIN {_SQLITE_UNCOUNT_CARD} {_SQLITE_COUNT_CARD} END",
    f"CREATE TRIGGER IF NOT EXISTS scms_cards_counted_delete AFTER DELETE ON scms_cards BEGIN "
    f"{_SQLITE_UNCOUNT_CARD} END",
    f"CREATE TRIGGER IF NOT EXISTS scms_requests_counted_insert AFTER INSERT ON scms_requests BEGIN "
    f"{_SQLITE_COUNT_REQUEST} END",
    f"CREATE TRIGGER IF NOT EXISTS scms_requests_counted_update AFTER UPDATE OF action, state, reason, updated_at "
    f"ON scms_requests WHEN {_SQLITE_MOVED} BEGIN {_SQLITE_UNCOUNT_REQUEST} {_SQLITE_COUNT_REQUEST} END",
    f"CREATE TRIGGER IF NOT EXISTS scms_requests_counted_delete AFTER DELETE ON scms_requests BEGIN "
    f"{_SQLITE_UNCOUNT_REQUEST} END",
)
# PostgreSQL: an UPDATE moves one request or card (a row trigger, only when its bucket changes: a lease's
# renewal within the day fires nothing); INSERT and DELETE are counted per statement from their transition
# tables, so that a bulk INSERT (the fleet's 100,000 requests) adds one count per bucket, not per row.
# Concurrent serve processes take the counter rows' locks in the order of the life cycle (old bucket, then
# new: queued, running, then done or failed), and a statement's buckets in key order: no cycle of waits.
_PG_DAY = "floor({row}.updated_at / 86400)::integer"
_PG_REASON = "CASE WHEN {row}.state = 'failed' THEN COALESCE({row}.reason, '') ELSE '' END"
_PG_BUCKET = f"({{row}}.action, {{row}}.state, {_PG_DAY}, {_PG_REASON})"
_PG_GROUPED = (f"SELECT {_PG_DAY.format(row='t')} AS day, t.action, t.state, {_PG_REASON.format(row='t')} AS reason, "
               "COUNT(*) AS n FROM {table} AS t GROUP BY 1, 2, 3, 4")
POSTGRES_COUNTERS = (
    """CREATE OR REPLACE FUNCTION scms_card_moved() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE scms_card_counts SET n = n - 1 WHERE state = OLD.state;
        INSERT INTO scms_card_counts AS c (state, n) VALUES (NEW.state, 1)
        ON CONFLICT (state) DO UPDATE SET n = c.n + 1;
        RETURN NULL;
    END $$""",
    """CREATE OR REPLACE FUNCTION scms_cards_added_or_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO scms_card_counts AS c (state, n)
            SELECT state, COUNT(*) FROM added GROUP BY state ORDER BY state
            ON CONFLICT (state) DO UPDATE SET n = c.n + excluded.n;
        ELSE
            UPDATE scms_card_counts AS c SET n = c.n - r.n
            FROM (SELECT state, COUNT(*) AS n FROM removed GROUP BY state) AS r WHERE c.state = r.state;
        END IF;
        RETURN NULL;
    END $$""",
    f"""CREATE OR REPLACE FUNCTION scms_request_moved() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE scms_request_counts SET n = n - 1 WHERE day = {_PG_DAY.format(row='OLD')}
        AND action = OLD.action AND state = OLD.state AND reason = {_PG_REASON.format(row='OLD')};
        INSERT INTO scms_request_counts AS c (day, action, state, reason, n)
        VALUES ({_PG_DAY.format(row='NEW')}, NEW.action, NEW.state, {_PG_REASON.format(row='NEW')}, 1)
        ON CONFLICT (day, action, state, reason) DO UPDATE SET n = c.n + 1;
        RETURN NULL;
    END $$""",
    f"""CREATE OR REPLACE FUNCTION scms_requests_added_or_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO scms_request_counts AS c (day, action, state, reason, n)
            {_PG_GROUPED.format(table='added')} ORDER BY 1, 2, 3, 4
            ON CONFLICT (day, action, state, reason) DO UPDATE SET n = c.n + excluded.n;
        ELSE
            UPDATE scms_request_counts AS c SET n = c.n - r.n FROM ({_PG_GROUPED.format(table='removed')}) AS r
            WHERE c.day = r.day AND c.action = r.action AND c.state = r.state AND c.reason = r.reason;
        END IF;
        RETURN NULL;
    END $$""",
    "CREATE OR REPLACE TRIGGER scms_cards_counted_insert AFTER INSERT ON scms_cards REFERENCING NEW TABLE AS added "
    "FOR EACH STATEMENT EXECUTE FUNCTION scms_cards_added_or_removed()",
    "CREATE OR REPLACE TRIGGER scms_cards_counted_delete AFTER DELETE ON scms_cards REFERENCING OLD TABLE AS removed "
    "FOR EACH STATEMENT EXECUTE FUNCTION scms_cards_added_or_removed()",
    "CREATE OR REPLACE TRIGGER scms_cards_counted_update AFTER UPDATE OF state ON scms_cards FOR EACH ROW "
    "WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION scms_card_moved()",
    "CREATE OR REPLACE TRIGGER scms_requests_counted_insert AFTER INSERT ON scms_requests "
    "REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION scms_requests_added_or_removed()",
    "CREATE OR REPLACE TRIGGER scms_requests_counted_delete AFTER DELETE ON scms_requests "
    "REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION scms_requests_added_or_removed()",
    f"CREATE OR REPLACE TRIGGER scms_requests_counted_update AFTER UPDATE OF action, state, reason, updated_at "
    f"ON scms_requests FOR EACH ROW WHEN ({_PG_BUCKET.format(row='OLD')} IS DISTINCT FROM "
    f"{_PG_BUCKET.format(row='NEW')}) EXECUTE FUNCTION scms_request_moved()",
)
# A database made before the counters: counted once from the rows, in the transaction that adds the triggers
COUNT_EXISTING = (
    "INSERT INTO scms_card_counts (state, n) SELECT state, COUNT(*) FROM scms_cards "
    "WHERE NOT EXISTS (SELECT 1 FROM scms_card_counts) GROUP BY state",
    "INSERT INTO scms_request_counts (day, action, state, reason, n) SELECT {day}, action, state, {reason}, "
    "COUNT(*) FROM scms_requests WHERE NOT EXISTS (SELECT 1 FROM scms_request_counts) GROUP BY 1, 2, 3, 4",
)


SERIAL = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgresql": "BIGSERIAL PRIMARY KEY"}


def old_statements(dialect: str, counters: bool = True) -> list[str]:
    """What 6a9082a's Database.create() ran on an empty database, in its order. ``counters=False``: its
    tables only, as a version from before the statistics' counters made them."""
    sqlite = dialect == "sqlite"
    day, reason = (_SQLITE_DAY, _SQLITE_REASON) if sqlite else (_PG_DAY, _PG_REASON)
    tables = [s.format(serial=SERIAL[dialect]) for s in SCHEMA]
    if not counters:
        return tables
    return [*tables, *COUNTER_TABLES,
            *(s.format(day=day.format(row="scms_requests"), reason=reason.format(row="scms_requests"))
              for s in COUNT_EXISTING),
            *(SQLITE_COUNTERS if sqlite else POSTGRES_COUNTERS)]


def make_old_database(url: str, rows: list[str], counters: bool = True) -> None:
    """The old schema made at ``url`` (sqlite:///path or postgresql://…), then ``rows`` (plain SQL, no
    parameters) written through its triggers, as the old code's writers did."""
    if url.startswith("sqlite:///"):
        db = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        try:
            db.execute("BEGIN")
            for statement in [*old_statements("sqlite", counters), *rows]:
                db.execute(statement)
            db.execute("COMMIT")
        finally:
            db.close()
        return
    import psycopg

    with psycopg.connect(url) as conn, conn.transaction():
        for statement in [*old_statements("postgresql", counters), *rows]:
            conn.execute(statement)
