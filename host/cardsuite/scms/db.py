"""The SCMS database: one schema for SQLite (a file in the system folder) and PostgreSQL (several ``serve``
processes and a bench sharing it), made and upgraded by the migrations of cardsuite.scms.schema (its version
recorded in the database); every query the CMS, AMS, KMS and ADS make is on an index. What differs between
the two databases is the inventory's Dialect, used here too.

Nothing that matters lives in a server's memory: a request is claimed by a conditional UPDATE (the row
moves from ``queued`` to ``running`` for one claimant only) and the brick guard's failure counts are rows.
The relay's order is checked on the link itself (relay.InOrder): a link lives in one server process, and a
request that moves to another server starts a new link. Each step of a request is written with the APDU
exchanges and key uses that led to it in one transaction (record_step): a server killed mid-request leaves
every finished step with its exchanges.

The statistics are counters kept by triggers in the transaction of every change (schema.COUNTER_TABLES): cards
per state, requests per UTC day, action, state and (failed ones) reason kind (cardsuite.scms.reasons: the
reason sentence names the card, its kind does not). Any writer keeps them right, the
bench's bulk INSERT too, and the statistics page reads a few rows per day however many cards and requests
there are.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardsuite.deploy.inventory import (
    POSTGRES,
    SQLITE,
    Dialect,
    connection_idle,
    kept_transaction,
    settle_writes,
    write_batch,
)
from cardsuite.deploy.inventory import _Cursor as Cursor  # the inventory's: one cursor wrapper
from cardsuite.deploy.migrations import NewerSchema
from cardsuite.errors import ConfigurationError, first_line
from cardsuite.scms.reasons import reason_kind
from cardsuite.scms.schema import SCHEMA
from cardsuite.sqlitefile import use_write_ahead_log

_INSERT_EXCHANGE = ("INSERT INTO scms_exchanges (request_id, seq, command, response, sw, seconds) "
                    "VALUES (?, ?, ?, ?, ?, ?)")
_INSERT_AUDIT = "INSERT INTO scms_audit (at, actor, operation, key_label, request_id, detail) VALUES (?, ?, ?, ?, ?, ?)"

CARD_STATES = ("ordered", "exported", "OP_READY", "INITIALIZED", "SECURED", "CARD_LOCKED", "TERMINATED")
REQUEST_STATES = ("queued", "running", "done", "failed")


# A running request's lease: the process serving it renews it (updated_at) every HEARTBEAT_SECONDS from a
# thread of its own (Lease), whatever the card or the cardholder is doing; a request not renewed for
# LEASE_SECONDS is abandoned (its server killed on any host, or cut off from the database) and the card it
# holds may be taken over. The times are the servers' clocks: they must agree to well within the margin.
HEARTBEAT_SECONDS = 15.0
LEASE_SECONDS = 120.0
BUSY_SECONDS = 30.0  # an SQLite file's busy timeout: another serve process's transaction waited for


def claimant_gone(claimant: str | None) -> bool:
    """Whether the server process that claimed a request (``host:pid``, server.Server.claimant) is known to
    be gone now: judged for this host's processes only (another host's by its lease, Database.claim_card)."""
    host, _, pid = (claimant or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class DatabaseError(ConfigurationError):
    """The SCMS database cannot be opened or used."""


@dataclass(frozen=True)
class RequestRecord:
    id: int
    terminal: str
    action: str
    target: str | None
    cin: str | None
    state: str
    reason: str | None
    claimed_by: str | None


@dataclass(frozen=True)
class CmsCard:
    """A card as the CMS knows it (scms_cards)."""

    cin: str
    order_ref: str | None
    profile: str | None
    state: str  # CARD_STATES
    blacklisted: bool
    auth_failures: int  # failed cryptograms or authentications (the ADS's brick guard)
    key_set: str  # transport, rotating (PUT KEY sent), issuer


class Lease:
    """Renews a running request's lease every ``every`` seconds on a connection of its own (a connection
    is one transaction at a time: the serving thread's stays its own), until the block ends."""

    def __init__(self, url: str, request_id: int, claimant: str, every: float = HEARTBEAT_SECONDS) -> None:
        self.url, self.request_id, self.claimant, self.every = url, request_id, claimant, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{request_id}", daemon=True)

    def _renew(self) -> None:
        db: Database | None = None  # connected at the first renewal: most requests end before it
        try:
            while not self._stop.wait(self.every):
                db = db or Database(self.url)
                if not db.renew_lease(self.request_id, self.claimant):
                    return  # ended or reaped: nothing to keep
        except DatabaseError:
            return  # the database is out of reach for this process: the lease runs out, as it should
        finally:
            if db is not None:
                db.close()

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Database:
    """One connection; every change one transaction. ``url``: sqlite:///path or postgresql://…"""

    def __init__(self, url: str, *, write_behind: bool = False) -> None:
        self.url = url
        self.write_behind = write_behind  # PostgreSQL: write-only transactions committed behind (settle_writes)
        self._current: Cursor | None = None  # the open transaction's cursor (nested ones join it)
        if url.startswith("sqlite:///"):
            path = Path(url[len("sqlite:///"):])
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db: Any = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None,
                                                check_same_thread=False)
                use_write_ahead_log(self._db, BUSY_SECONDS)
            except (OSError, sqlite3.Error) as exc:
                raise DatabaseError(f"cannot open the SCMS database {path}: {exc}") from None
            self.dialect: Dialect = SQLITE
            self._errors: tuple[type[Exception], ...] = (sqlite3.Error,)
        elif url.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg
            except ImportError:
                raise DatabaseError("a PostgreSQL SCMS needs psycopg: pip install 'cardsuite[scms]'") from None
            try:
                self._db = psycopg.connect(url, autocommit=True, connect_timeout=10)
            except psycopg.Error as exc:
                raise DatabaseError(f"cannot connect to the SCMS database: {exc}".strip()) from None
            self.dialect = POSTGRES
            self._errors = (psycopg.Error,)
        else:
            raise DatabaseError(f"database URL {url!r}: use sqlite:///path or postgresql://user@host/db")

    def create(self) -> int:
        """The schema made or upgraded to SCHEMA_VERSION, one migration per transaction (Schema.migrate, the
        lock two serve processes starting at once share); returns that version. A database newer than this
        code is refused with one line."""
        try:
            return SCHEMA.migrate(self.transaction, self._db, self.dialect is SQLITE)
        except NewerSchema as exc:
            raise DatabaseError(str(exc)) from None
        except self._errors as exc:  # the lock's own statements
            raise self._error(exc) from None

    def schema_version(self) -> int:
        """The version the database is at (0: made before versions were recorded, or not made yet)."""
        with self.transaction() as cur:
            return SCHEMA.recorded(cur, self.dialect is SQLITE)

    def close(self) -> None:
        try:
            settle_writes()
        finally:
            self._db.close()

    def idle(self) -> bool:
        """Open and in no transaction: fit for the next user (cardsuite.scms.pool)."""
        settle_writes()
        return connection_idle(self._db)

    @contextmanager
    def transaction(self, *, write_only: bool = False) -> Iterator[Cursor]:
        """``write_only``: one round trip on PostgreSQL (inventory.write_batch: the body reads no result),
        and with ``write_behind`` committed behind the caller (inventory.settle_writes). Inside another
        transaction of this connection, a part of it: one commit, or nothing, at its end."""
        if self._current is not None:
            yield self._current
            return
        if write_only and self.write_behind and self.dialect is POSTGRES:
            with kept_transaction(self._db, self.dialect, self._error, self._set_current) as kept:
                yield kept
            return
        settle_writes()
        cursor = self._current = Cursor(self._db.cursor(), self.dialect)
        try:
            with write_batch(self._db, write_only and self.dialect is POSTGRES):
                cursor.execute("BEGIN IMMEDIATE" if self.dialect is SQLITE else "BEGIN")
                yield cursor
                cursor.execute("COMMIT")
        except self._errors as exc:
            try:
                cursor.execute("ROLLBACK")
            except self._errors:
                pass
            raise self._error(exc) from None
        except BaseException:
            try:
                cursor.execute("ROLLBACK")
            except self._errors:
                pass
            raise
        finally:
            self._current = None
            cursor.close()

    def _set_current(self, cursor: Cursor | None) -> None:
        self._current = cursor

    def _error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, self._errors):
            return DatabaseError(f"SCMS database error: {first_line(exc)}")
        return exc

    @contextmanager
    def _statement(self) -> Iterator[Cursor]:
        """One statement: a part of the open transaction, else a transaction of its own as the database
        runs it (autocommit: one round trip on PostgreSQL, where BEGIN and COMMIT around it made three)."""
        if self._current is not None:
            yield self._current
            return
        settle_writes()
        cursor = Cursor(self._db.cursor(), self.dialect)
        try:
            yield cursor
        except self._errors as exc:
            raise self._error(exc) from None
        finally:
            cursor.close()

    def query(self, sql: str, args: Sequence[object] = ()) -> list[tuple]:
        with self._statement() as cur:
            return cur.fetchall(sql, args)

    def execute(self, sql: str, args: Sequence[object] = ()) -> int:
        with self._statement() as cur:
            return cur.execute(sql, args)

    def insert(self, sql: str, args: Sequence[object] = ()) -> int:
        """An INSERT into a table with an auto-numbered id; returns the id."""
        with self._statement() as cur:
            return int(cur.fetchall(sql + " RETURNING id", args)[0][0])

    # -- ADS requests: claimed by one conditional update
    def new_request(self, terminal: str, action: str, target: str | None, claimant: str | None = None) -> int:
        """Queued, or with ``claimant`` running already (a server's request of its own terminal link: made and
        claimed in one statement)."""
        now = time.time()
        return self.insert("INSERT INTO scms_requests (terminal, action, target, state, claimed_by, created_at, "
                           "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (terminal, action, target, "queued" if claimant is None else "running", claimant, now, now))

    def claim_request(self, request_id: int, claimant: str) -> bool:
        """queued -> running for exactly one claimant (a second serve process or agent is told no)."""
        return self.execute("UPDATE scms_requests SET state = 'running', claimed_by = ?, updated_at = ? "
                            "WHERE id = ? AND state = 'queued'", (claimant, time.time(), request_id)) == 1

    def finish_request(self, request_id: int, state: str, reason: str | None = None, cin: str | None = None) -> None:
        """``reason``: the outcome of a done request, the failure of a failed one (counted by its kind)."""
        kind = reason_kind(reason) if state == "failed" else None
        self.execute("UPDATE scms_requests SET state = ?, reason = ?, reason_kind = ?, cin = COALESCE(?, cin), "
                     "updated_at = ? WHERE id = ?", (state, reason, kind, cin, time.time(), request_id))

    def reap(self, request_id: int, claimant: str, cin: str, renewed: float | None = None) -> bool:
        """A running request whose server process is gone, ended as failed with that reason and the card it
        held (free again: the deployer's plan makes the next run finish the card). ``renewed``: the lease
        seen expired; a renewal since then (the server alive after all) keeps the request."""
        lease = "" if renewed is None else " AND updated_at <= ?"
        reason = f"the server {claimant} went away mid-request"
        return self.execute("UPDATE scms_requests SET state = 'failed', reason = ?, reason_kind = ?, "
                            "cin = COALESCE(cin, ?), updated_at = ? WHERE id = ? AND state = 'running' AND "
                            f"claimed_by = ?{lease}", (reason, reason_kind(reason), cin, time.time(), request_id,
                                                       claimant, *(() if renewed is None else (renewed,)))) == 1

    def renew_lease(self, request_id: int, claimant: str) -> bool:
        """The serving process's heartbeat (see LEASE_SECONDS): False once the request is no longer its."""
        return self.execute("UPDATE scms_requests SET updated_at = ? WHERE id = ? AND state = 'running' AND "
                            "claimed_by = ?", (time.time(), request_id, claimant)) == 1

    def request(self, request_id: int) -> RequestRecord | None:
        rows = self.query("SELECT id, terminal, action, target, cin, state, reason, claimed_by FROM scms_requests "
                          "WHERE id = ?", (request_id,))
        return RequestRecord(*rows[0]) if rows else None

    def record_step(self, request_id: int, number: int, name: str, outcome: str, detail: str = "", *,
                    exchanges: Sequence[tuple[int, str, str, int, float]] = (),
                    audit: Sequence[tuple[float, str, str, str | None, int | None, str]] = (),
                    within: Cursor | None = None) -> None:
        """A step with the APDU exchanges (seq, command, response, sw, seconds; masked already) and key uses
        that led to it: one transaction, so a step on record always has its exchanges, a crash loses none.
        ``within``: an open transaction of another connection to this database (the inventory's, writing the
        deployer's event of the same step), joined: one commit for both."""
        with self.transaction(write_only=True) if within is None else nullcontext(within) as cur:
            cur.execute("INSERT INTO scms_steps (request_id, number, name, outcome, detail, at) "
                        "VALUES (?, ?, ?, ?, ?, ?)", (request_id, number, name, outcome, detail, time.time()))
            cur.executemany(_INSERT_EXCHANGE, [(request_id, *row) for row in exchanges])
            cur.executemany(_INSERT_AUDIT, audit)

    def steps(self, request_id: int) -> list[tuple[int, str, str, str]]:
        return [tuple(r) for r in self.query("SELECT number, name, outcome, detail FROM scms_steps "
                                              "WHERE request_id = ? ORDER BY number, id", (request_id,))]

    def exchanges(self, request_id: int) -> list[tuple[int, str, str, int]]:
        return [tuple(r) for r in self.query("SELECT seq, command, response, sw FROM scms_exchanges "
                                              "WHERE request_id = ? ORDER BY seq", (request_id,))]

    def record_audit(self, rows: Sequence[tuple[float, str, str, str | None, int | None, str]]) -> None:
        with self.transaction() as cur:
            cur.executemany(_INSERT_AUDIT, rows)

    # -- CMS cards
    def card(self, cin: str) -> CmsCard | None:
        rows = self.query("SELECT cin, order_ref, profile, state, blacklisted, auth_failures, key_set FROM scms_cards "
                          "WHERE cin = ?", (cin,))
        if not rows:
            return None
        cin, order_ref, profile, state, blacklisted, auth_failures, key_set = rows[0]
        return CmsCard(cin, order_ref, profile, state, bool(blacklisted), int(auth_failures), key_set)

    def upsert_card(self, cin: str, state: str, profile: str | None = None, order_ref: str | None = None, *,
                    within: Cursor | None = None) -> None:
        """``within``: an open transaction (record_step's), joined."""
        with self._statement() if within is None else nullcontext(within) as cur:
            cur.execute("INSERT INTO scms_cards (cin, state, profile, order_ref, updated_at) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT (cin) DO UPDATE SET state = excluded.state, "
                        "profile = COALESCE(excluded.profile, scms_cards.profile), "
                        "order_ref = COALESCE(excluded.order_ref, scms_cards.order_ref), "
                        "updated_at = excluded.updated_at", (cin, state, profile, order_ref, time.time()))

    def set_blacklisted(self, cin: str, blacklisted: bool) -> bool:
        return self.execute("UPDATE scms_cards SET blacklisted = ?, updated_at = ? WHERE cin = ?",
                            (int(blacklisted), time.time(), cin)) == 1

    def claim_card(self, cin: str, request_id: int) -> int | None:
        """The card for this request only: None when claimed, else the running request that holds it (two
        terminals racing for one card, or one card presented twice). A claim of a request that is no longer
        running (done, failed, its server gone and the request reaped) is taken over."""
        changed = self.execute(
            "UPDATE scms_cards SET busy_request = ? WHERE cin = ? AND (busy_request IS NULL OR busy_request = ? OR "
            "busy_request NOT IN (SELECT id FROM scms_requests WHERE state = 'running'))",
            (request_id, cin, request_id))
        if changed == 1:
            return None
        rows = self.query("SELECT r.id, r.claimed_by, r.updated_at FROM scms_cards c JOIN scms_requests r "
                          "ON r.id = c.busy_request WHERE c.cin = ? AND r.state = 'running'", (cin,))
        if not rows:  # released meanwhile, or an unknown card
            rows = self.query("SELECT busy_request FROM scms_cards WHERE cin = ?", (cin,))
            return int(rows[0][0]) if rows and rows[0][0] is not None else None
        holder, claimant, renewed = int(rows[0][0]), rows[0][1], float(rows[0][2])
        if claimant_gone(claimant):  # a process of this host that no longer exists
            reaped = self.reap(holder, claimant, cin)
        else:  # any host's: its lease ran out
            reaped = time.time() - renewed > LEASE_SECONDS and self.reap(holder, claimant, cin, renewed)
        if reaped:  # its server was killed: the card is free
            return self.claim_card(cin, request_id)
        return holder

    def release_card(self, cin: str, request_id: int) -> None:
        self.execute("UPDATE scms_cards SET busy_request = NULL WHERE cin = ? AND busy_request = ?", (cin, request_id))

    def set_key_set(self, cin: str, key_set: str) -> None:
        """Which keys the card holds: transport, rotating (written ahead of PUT KEY), issuer."""
        self.execute("UPDATE scms_cards SET key_set = ?, updated_at = ? WHERE cin = ?", (key_set, time.time(), cin))

    # -- the cardholder PIN steps owed (cardsuite.scms.ads: personalised with a one-time PIN not yet replaced)
    def owed_pins(self, cin: str) -> dict[str, str]:
        """Instance AID (hex) -> the nonce of its one-time PIN and PUK, for each the card owes a PIN step."""
        return {aid: nonce for aid, nonce in self.query(
            "SELECT aid, nonce FROM scms_owed_pins WHERE cin = ? ORDER BY created_at", (cin,))}

    def owe_pin(self, cin: str, aid: str, nonce: str, request_id: int) -> None:
        """Written ahead of the personalisation (which sets the one-time PIN): a nonce owed already stays."""
        self.execute("INSERT INTO scms_owed_pins (cin, aid, nonce, request_id, created_at) VALUES (?, ?, ?, ?, ?) "
                     "ON CONFLICT (cin, aid) DO NOTHING", (cin, aid, nonce, request_id, time.time()))

    def forget_pin(self, cin: str, aid: str) -> None:
        """The PIN step done (or its instance gone): the nonce deleted, so the one-time PIN and PUK can no
        longer be computed."""
        self.execute("DELETE FROM scms_owed_pins WHERE cin = ? AND aid = ?", (cin, aid))

    def serialise(self, cur: Cursor, lock: int) -> None:
        """In a transaction: one process at a time past this point with this ``lock``, until the commit (on
        SQLite the transaction's BEGIN IMMEDIATE is that lock already)."""
        if self.dialect is POSTGRES:
            cur.execute(f"SELECT pg_advisory_xact_lock({int(lock)})")

    def count_auth_failure(self, cin: str) -> None:
        self.execute("UPDATE scms_cards SET auth_failures = auth_failures + 1, updated_at = ? WHERE cin = ?",
                     (time.time(), cin))

    def cards_by_state(self) -> dict[str, int]:
        """Cards per life-cycle state, from the counters (one row per state, read along its key)."""
        return {state: int(n) for state, n in self.query("SELECT state, n FROM scms_card_counts WHERE n > 0 "
                                                          "ORDER BY state")}

    def statistics(self, since: float = 0.0) -> dict[str, dict[str, int]]:
        """The paper's statistics (card states, requests, failures by reason kind), for the console's page,
        from the counters: requests that reached their state on the UTC day of ``since`` or later."""
        day = int(since // 86400)
        requests = self.query("SELECT action, state, SUM(n) FROM scms_request_counts WHERE day >= ? "
                              "GROUP BY action, state HAVING SUM(n) > 0", (day,))
        failures = self.query("SELECT reason, SUM(n) FROM scms_request_counts WHERE state = 'failed' AND day >= ? "
                              "GROUP BY reason HAVING SUM(n) > 0 ORDER BY SUM(n) DESC, reason LIMIT 20", (day,))
        return {"cards": self.cards_by_state(),
                "requests": {f"{action} {state}": int(n) for action, state, n in requests},
                "failures": {reason or "unknown": int(n) for reason, n in failures}}

    def done_per_day(self, since: float = 0.0) -> dict[int, int]:
        """Requests done per UTC day (days since the epoch) from the day of ``since`` on, from the counters."""
        return {int(day): int(n) for day, n in self.query(
            "SELECT day, SUM(n) FROM scms_request_counts WHERE state = 'done' AND day >= ? GROUP BY day "
            "HAVING SUM(n) > 0", (int(since // 86400),))}
