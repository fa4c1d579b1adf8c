"""The SCMS database's schema as an ordered list of migrations, run by cardsuite.deploy.migrations: each in one
transaction with the version it reaches recorded in ``scms_schema``, under the advisory lock that creating
the database always took, so that of several ``serve`` processes starting at once one migrates and the
others wait. ``Database.create`` runs the ones a database lacks; a database newer than this code (a later
cardsuite migrated it) is refused rather than written with an older idea of its tables.

A database made before versions were recorded (commit 6a9082a and earlier) is at version 0: the first
migrations are written to be no-ops on whatever part of them it already has (IF NOT EXISTS, a column dropped
only where present, counters counted only when empty), which is how the code upgraded such databases before.
Never edit a migration once released: add one.
"""

from __future__ import annotations

from cardsuite.deploy.inventory import _Cursor as Cursor  # the inventory's: one cursor wrapper
from cardsuite.deploy.migrations import Migration, Schema
from cardsuite.scms.reasons import reason_kind

# PostgreSQL advisory locks of the SCMS, here so that no two share a number
ADVISORY_LOCK = 1129140563  # "CMSS": the SCMS schema's lock on a PostgreSQL server
PIN_KEY_LOCK = 1129140564  # "CMST": a server making the token's PIN_KEY (cardsuite.scms.ads, an older system's)

TABLES = (
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
# its outcome, one text per card). A change moves the request from its old bucket to its new one. ``column``
# is what the bucket's reason is: the reason text at version 3, its kind (cardsuite.scms.reasons) from 4 on.
COUNTER_TABLES = (
    "CREATE TABLE IF NOT EXISTS scms_card_counts (state TEXT PRIMARY KEY, n BIGINT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS scms_request_counts (
        day INTEGER NOT NULL, action TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, n BIGINT NOT NULL,
        PRIMARY KEY (day, action, state, reason))""",
    "CREATE INDEX IF NOT EXISTS scms_request_counts_failed ON scms_request_counts (state, day, reason)",
)
SQLITE_DAY = "CAST({row}.updated_at / 86400 AS INTEGER)"
PG_DAY = "floor({row}.updated_at / 86400)::integer"
# the reason a failed request is counted under: {column} of the row, '' for the others
REASON = "CASE WHEN {{row}}.state = 'failed' THEN COALESCE({{row}}.{column}, '') ELSE '' END"
COUNT_EXISTING = (
    "INSERT INTO scms_card_counts (state, n) SELECT state, COUNT(*) FROM scms_cards "
    "WHERE NOT EXISTS (SELECT 1 FROM scms_card_counts) GROUP BY state",
    "INSERT INTO scms_request_counts (day, action, state, reason, n) SELECT {day}, action, state, {reason}, "
    "COUNT(*) FROM scms_requests WHERE NOT EXISTS (SELECT 1 FROM scms_request_counts) GROUP BY 1, 2, 3, 4",
)

_SQLITE_COUNT_CARD = ("INSERT INTO scms_card_counts (state, n) VALUES (NEW.state, 1) "
                      "ON CONFLICT (state) DO UPDATE SET n = n + 1;")
_SQLITE_UNCOUNT_CARD = "UPDATE scms_card_counts SET n = n - 1 WHERE state = OLD.state;"
SQLITE_CARD_COUNTERS = (
    f"CREATE TRIGGER IF NOT EXISTS scms_cards_counted_insert AFTER INSERT ON scms_cards BEGIN "
    f"{_SQLITE_COUNT_CARD} END",
    f"CREATE TRIGGER IF NOT EXISTS scms_cards_counted_update AFTER UPDATE OF state ON scms_cards "
    f"WHEN OLD.state IS NOT NEW.state BEGIN {_SQLITE_UNCOUNT_CARD} {_SQLITE_COUNT_CARD} END",
    f"CREATE TRIGGER IF NOT EXISTS scms_cards_counted_delete AFTER DELETE ON scms_cards BEGIN "
    f"{_SQLITE_UNCOUNT_CARD} END",
)
REQUEST_TRIGGERS = ("scms_requests_counted_insert", "scms_requests_counted_update", "scms_requests_counted_delete")


def sqlite_request_counters(column: str) -> tuple[str, ...]:
    reason = REASON.format(column=column)
    count = (f"INSERT INTO scms_request_counts (day, action, state, reason, n) VALUES "
             f"({SQLITE_DAY.format(row='NEW')}, NEW.action, NEW.state, {reason.format(row='NEW')}, 1) "
             f"ON CONFLICT (day, action, state, reason) DO UPDATE SET n = n + 1;")
    uncount = (f"UPDATE scms_request_counts SET n = n - 1 WHERE day = {SQLITE_DAY.format(row='OLD')} "
               f"AND action = OLD.action AND state = OLD.state AND reason = {reason.format(row='OLD')};")
    moved = " OR ".join(f"{part.format(row='OLD')} IS NOT {part.format(row='NEW')}"
                        for part in ("{row}.action", "{row}.state", SQLITE_DAY, reason))
    return (
        f"CREATE TRIGGER IF NOT EXISTS scms_requests_counted_insert AFTER INSERT ON scms_requests BEGIN {count} END",
        f"CREATE TRIGGER IF NOT EXISTS scms_requests_counted_update AFTER UPDATE OF action, state, {column}, "
        f"updated_at ON scms_requests WHEN {moved} BEGIN {uncount} {count} END",
        f"CREATE TRIGGER IF NOT EXISTS scms_requests_counted_delete AFTER DELETE ON scms_requests BEGIN {uncount} END",
    )


# PostgreSQL: an UPDATE moves one request or card (a row trigger, only when its bucket changes: a lease's
# renewal within the day fires nothing); INSERT and DELETE are counted per statement from their transition
# tables, so that a bulk INSERT (the fleet's 100,000 requests) adds one count per bucket, not per row.
# Concurrent serve processes take the counter rows' locks in the order of the life cycle (old bucket, then
# new: queued, running, then done or failed), and a statement's buckets in key order: no cycle of waits.
POSTGRES_CARD_COUNTERS = (
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
    "CREATE OR REPLACE TRIGGER scms_cards_counted_insert AFTER INSERT ON scms_cards REFERENCING NEW TABLE AS added "
    "FOR EACH STATEMENT EXECUTE FUNCTION scms_cards_added_or_removed()",
    "CREATE OR REPLACE TRIGGER scms_cards_counted_delete AFTER DELETE ON scms_cards REFERENCING OLD TABLE AS removed "
    "FOR EACH STATEMENT EXECUTE FUNCTION scms_cards_added_or_removed()",
    "CREATE OR REPLACE TRIGGER scms_cards_counted_update AFTER UPDATE OF state ON scms_cards FOR EACH ROW "
    "WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION scms_card_moved()",
)


def postgres_request_counters(column: str) -> tuple[str, ...]:
    reason = REASON.format(column=column)
    bucket = f"({{row}}.action, {{row}}.state, {PG_DAY}, {reason})"
    grouped = (f"SELECT {PG_DAY.format(row='t')} AS day, t.action, t.state, {reason.format(row='t')} AS reason, "
               "COUNT(*) AS n FROM {table} AS t GROUP BY 1, 2, 3, 4")
    return (
        f"""CREATE OR REPLACE FUNCTION scms_request_moved() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE scms_request_counts SET n = n - 1 WHERE day = {PG_DAY.format(row='OLD')}
            AND action = OLD.action AND state = OLD.state AND reason = {reason.format(row='OLD')};
            INSERT INTO scms_request_counts AS c (day, action, state, reason, n)
            VALUES ({PG_DAY.format(row='NEW')}, NEW.action, NEW.state, {reason.format(row='NEW')}, 1)
            ON CONFLICT (day, action, state, reason) DO UPDATE SET n = c.n + 1;
            RETURN NULL;
        END $$""",
        f"""CREATE OR REPLACE FUNCTION scms_requests_added_or_removed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO scms_request_counts AS c (day, action, state, reason, n)
                {grouped.format(table='added')} ORDER BY 1, 2, 3, 4
                ON CONFLICT (day, action, state, reason) DO UPDATE SET n = c.n + excluded.n;
            ELSE
                UPDATE scms_request_counts AS c SET n = c.n - r.n FROM ({grouped.format(table='removed')}) AS r
                WHERE c.day = r.day AND c.action = r.action AND c.state = r.state AND c.reason = r.reason;
            END IF;
            RETURN NULL;
        END $$""",
        "CREATE OR REPLACE TRIGGER scms_requests_counted_insert AFTER INSERT ON scms_requests "
        "REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION scms_requests_added_or_removed()",
        "CREATE OR REPLACE TRIGGER scms_requests_counted_delete AFTER DELETE ON scms_requests "
        "REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION scms_requests_added_or_removed()",
        f"CREATE OR REPLACE TRIGGER scms_requests_counted_update AFTER UPDATE OF action, state, {column}, updated_at "
        f"ON scms_requests FOR EACH ROW WHEN ({bucket.format(row='OLD')} IS DISTINCT FROM "
        f"{bucket.format(row='NEW')}) EXECUTE FUNCTION scms_request_moved()",
    )


def _count_from_rows(cur: Cursor, sqlite: bool, column: str) -> None:
    """The counters counted once from the rows (only where they are empty: a database that had them keeps
    the counts its triggers kept)."""
    day = (SQLITE_DAY if sqlite else PG_DAY).format(row="scms_requests")
    reason = REASON.format(column=column).format(row="scms_requests")
    for statement in COUNT_EXISTING:
        cur.execute(statement.format(day=day, reason=reason))


# -- the migrations, in order

def _tables(cur: Cursor, sqlite: bool) -> None:
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT" if sqlite else "BIGSERIAL PRIMARY KEY"
    for statement in TABLES:
        cur.execute(statement.format(serial=serial))


def _drop_relay_seq(cur: Cursor, sqlite: bool) -> None:
    """The column the relay's order was checked in before that moved to the link (relay.InOrder): unused."""
    if not sqlite:
        cur.execute("ALTER TABLE scms_requests DROP COLUMN IF EXISTS relay_seq")
    elif any(row[1] == "relay_seq" for row in cur.fetchall("PRAGMA table_info(scms_requests)")):
        cur.execute("ALTER TABLE scms_requests DROP COLUMN relay_seq")


def _counters(cur: Cursor, sqlite: bool) -> None:
    for statement in COUNTER_TABLES:
        cur.execute(statement)
    _count_from_rows(cur, sqlite, "reason")
    for statement in (SQLITE_CARD_COUNTERS + sqlite_request_counters("reason") if sqlite
                      else POSTGRES_CARD_COUNTERS + postgres_request_counters("reason")):
        cur.execute(statement)


def _reason_kinds(cur: Cursor, sqlite: bool) -> None:
    """Failures counted by their reason's kind (cardsuite.scms.reasons), not by the sentence that names the
    card: the old failed rows classified once, the request counters counted again from the rows."""
    cur.execute("ALTER TABLE scms_requests ADD COLUMN reason_kind TEXT")
    reasons = cur.fetchall("SELECT DISTINCT reason FROM scms_requests WHERE state = 'failed' AND reason IS NOT NULL")
    # one UPDATE through a lookup table, not one per distinct reason (each would walk the requests: no index)
    cur.execute("CREATE TEMPORARY TABLE scms_reason_kinds (reason TEXT PRIMARY KEY, kind TEXT NOT NULL)")
    cur.executemany("INSERT INTO scms_reason_kinds (reason, kind) VALUES (?, ?)",
                    [(reason, reason_kind(reason)) for (reason,) in reasons])
    cur.execute("UPDATE scms_requests SET reason_kind = (SELECT kind FROM scms_reason_kinds AS k WHERE "
                "k.reason = scms_requests.reason) WHERE state = 'failed' AND reason IS NOT NULL")
    cur.execute("DROP TABLE scms_reason_kinds")
    if sqlite:  # SQLite has no CREATE OR REPLACE TRIGGER
        for name in REQUEST_TRIGGERS:
            cur.execute(f"DROP TRIGGER IF EXISTS {name}")
    cur.execute("DELETE FROM scms_request_counts")
    _count_from_rows(cur, sqlite, "reason_kind")
    for statement in sqlite_request_counters("reason_kind") if sqlite else postgres_request_counters("reason_kind"):
        cur.execute(statement)


def _owed_pins(cur: Cursor, sqlite: bool) -> None:
    """The cardholder PIN steps owed (cardsuite.scms.ads): an instance personalised with a one-time PIN the
    cardholder has not replaced yet, and the nonce its one-time PIN and PUK are computed from in the token."""
    cur.execute("""CREATE TABLE scms_owed_pins (
        cin TEXT NOT NULL, aid TEXT NOT NULL, nonce TEXT NOT NULL, request_id INTEGER NOT NULL,
        created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (cin, aid))""")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "tables and indexes", _tables),
    Migration(2, "the unused relay_seq column dropped", _drop_relay_seq),
    Migration(3, "statistics counters kept by triggers, counted once from the rows", _counters),
    Migration(4, "failures counted by reason kind (scms_requests.reason_kind), not by the sentence", _reason_kinds),
    Migration(5, "the cardholder PIN steps owed (scms_owed_pins)", _owed_pins),
)
SCHEMA = Schema("the SCMS database", "scms_schema", ADVISORY_LOCK, MIGRATIONS)
SCHEMA_VERSION = SCHEMA.version
