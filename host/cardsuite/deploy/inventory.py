"""The card inventory: every card seen (by its CPLC identity), what is on it, its life cycle, and every event.

One schema for SQLite (the default, ``sqlite:///<state directory>/inventory.db``, see settings) and PostgreSQL
(``postgresql://user@host:port/db``, through psycopg) so a fleet loaded from many stations shares one
database. The SQL is kept to what both understand (``ON CONFLICT … DO UPDATE``, plain types); the two
differences, the parameter style and the auto-numbered key, live in ``Dialect`` and nowhere else.

A SQLite inventory is marked as ours (``PRAGMA application_id``) when created; a file holding anything else
is refused rather than given our tables. ``read_only`` opens an existing inventory and creates nothing. The
schema is migrated on open (inventory_schema, cardsuite.deploy.migrations): its version is in the database.
"""

from __future__ import annotations

import re
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardsuite import settings
from cardsuite.deploy.inventory_schema import SCHEMA
from cardsuite.deploy.migrations import NewerSchema
from cardsuite.errors import ConfigurationError, first_line
from cardsuite.gp.client import CardContents


class InventoryError(ConfigurationError):
    """The inventory database cannot be opened or used."""


@dataclass(frozen=True)
class Dialect:
    """What differs between the two databases: placeholders and the auto-numbered key."""

    name: str
    placeholder: str
    serial: str

    def sql(self, text: str) -> str:
        return text.replace("?", self.placeholder) if self.placeholder != "?" else text


# PRAGMA application_id of an inventory file: "CSIV" (https://sqlite.org/pragma.html#pragma_application_id)
APPLICATION_ID = int.from_bytes(b"CSIV", "big")
TABLES = ("inv_cards", "inv_contents", "inv_events", "inv_keys", "inv_schema", "inv_deploy_counts")

SQLITE = Dialect("sqlite", "?", "INTEGER PRIMARY KEY AUTOINCREMENT")
POSTGRES = Dialect("postgresql", "%s", "BIGSERIAL PRIMARY KEY")


@dataclass(frozen=True)
class CardRecord:
    card: str
    cplc: str | None
    atr: str | None
    card_type: str | None
    life_cycle: str | None
    profile: str | None
    first_seen: float
    last_seen: float
    station: str | None


@dataclass(frozen=True)
class ContentRecord:
    card: str
    aid: str
    kind: str
    state: str
    parent: str | None
    detail: str | None


@dataclass(frozen=True)
class KeyRecord:
    """The card's key set as the inventory knows it: never the keys, only their version and role."""

    card: str
    kvn: int
    key_set: str


@dataclass(frozen=True)
class EventRecord:
    id: int
    card: str
    at: float
    station: str
    action: str
    target: str | None
    outcome: str
    detail: str | None


def default_url() -> str:
    return settings.inventory_url()


def _sqlite_path(url: str) -> Path:
    """sqlite:///relative/path or sqlite:////absolute/path (the usual convention: the path follows
    the third slash)."""
    rest = url[len("sqlite:///"):]
    if not rest:
        raise InventoryError(f"inventory URL {url!r} names no file (sqlite:///path/inventory.db)")
    return Path(rest)


class Inventory:
    """Open with a URL; every change is one transaction."""

    def __init__(self, url: str | None = None, station: str | None = None, *, read_only: bool = False,
                 write_behind: bool = False) -> None:
        self.url = url or default_url()
        self.station = station or socket.gethostname()
        self.read_only = read_only
        self.write_behind = write_behind  # PostgreSQL: write-only transactions committed behind (settle_writes)
        self.current: _Cursor | None = None  # the open transaction's cursor
        if self.url.startswith("sqlite:///"):
            path = _sqlite_path(self.url)
            if read_only and not path.is_file():
                raise InventoryError(f"no inventory at {path}")
            try:
                if read_only:  # mode=rw: never creates the file (see store.WalletStore for why not ro)
                    self._db: Any = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=10,
                                                    isolation_level=None)
                    self._db.execute("PRAGMA query_only = ON")
                else:  # used by one thread at a time, not always the one that opened it (an SCMS pool's)
                    settings.make_private_parent(path)
                    self._db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
                self._claim_sqlite(path)
            except (OSError, sqlite3.Error) as exc:
                raise InventoryError(f"cannot open the inventory {path}: {exc}") from None
            self.dialect = SQLITE
            self._errors: tuple[type[Exception], ...] = (sqlite3.Error,)
        elif self.url.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg
            except ImportError:
                raise InventoryError("a PostgreSQL inventory needs psycopg: pip install 'psycopg[binary]'") from None
            try:
                self._db = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            except psycopg.Error as exc:
                raise InventoryError(f"cannot connect to the inventory database: {exc}".strip()) from None
            self.dialect = POSTGRES
            self._errors = (psycopg.Error,)
        else:
            raise InventoryError(f"inventory URL {self.url!r}: use sqlite:///path or postgresql://user@host/db")
        self._migrate()

    def _migrate(self) -> None:
        """The schema brought to SCHEMA.version (inventory_schema), one migration per transaction; read-only,
        only checked: a newer inventory is refused by both (one line), an older one read as it is."""
        sqlite = self.dialect is SQLITE
        try:
            with self.transaction() as cur:  # the usual case: one read, no lock
                version = SCHEMA.recorded(cur, sqlite)
            SCHEMA.refuse_newer(version)
            if not self.read_only and version < SCHEMA.version:
                SCHEMA.migrate(lambda: self.transaction(immediate=True), self._db, sqlite)
        except NewerSchema as exc:
            self._db.close()
            raise InventoryError(str(exc)) from None
        except self._errors as exc:  # the lock's own statements
            self._db.close()
            raise InventoryError(f"inventory database error: {first_line(exc)}") from None

    def _claim_sqlite(self, path: Path) -> None:
        """Ours (marked), or empty and then marked; anything else is another program's file: refused untouched.
        An inventory from before the mark holds exactly our tables and gets the mark."""
        marked = self._db.execute("PRAGMA application_id").fetchone()[0]
        if marked == APPLICATION_ID:
            return
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                     "AND name NOT LIKE 'sqlite_%'")}
        if marked != 0 or (tables and not tables <= set(TABLES)):
            self._db.close()
            raise InventoryError(f"{path} is an SQLite file of another program, not a cardsuite inventory: "
                                 "give the inventory a file of its own")
        if self.read_only:
            if not tables:
                self._db.close()
                raise InventoryError(f"{path} is not a cardsuite inventory (empty)")
            return
        self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    def close(self) -> None:
        try:
            settle_writes()
        finally:
            self._db.close()

    def idle(self) -> bool:
        """Open and in no transaction: fit for the next user (a connection pool's check)."""
        settle_writes()
        return connection_idle(self._db)

    def __enter__(self) -> Inventory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, immediate: bool = False, *, write_only: bool = False) -> Iterator[_Cursor]:
        """``immediate``: SQLite takes the write lock at BEGIN (a migration reads, then writes: a deferred
        transaction would fail to upgrade its lock when another one got there first). ``write_only``: the
        body reads no result (no fetch, no row count), so on PostgreSQL its statements and the COMMIT go as
        one batch, one round trip (write_batch), and with ``write_behind`` committed behind the caller
        (settle_writes). Inside another transaction of this inventory, a part of it (``current``: the open
        one's cursor, for another writer to the same database to join)."""
        if self.current is not None:
            yield self.current
            return
        if write_only and self.write_behind and self.dialect is POSTGRES:
            with kept_transaction(self._db, self.dialect, self._error, self._set_current) as cursor:
                yield cursor
            return
        settle_writes()
        cursor = self.current = _Cursor(self._db.cursor(), self.dialect)
        try:
            with write_batch(self._db, write_only and self.dialect is POSTGRES):
                cursor.execute("BEGIN IMMEDIATE" if immediate and self.dialect is SQLITE else "BEGIN")
                yield cursor
                cursor.execute("COMMIT")
        except self._errors as exc:
            self._rollback(cursor)
            raise self._error(exc) from None
        except BaseException:
            self._rollback(cursor)
            raise
        finally:
            self.current = None
            cursor.close()

    def _set_current(self, cursor: _Cursor | None) -> None:
        self.current = cursor

    def _error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, self._errors):
            return InventoryError(f"inventory database error: {first_line(exc)}")
        return exc

    def _rollback(self, cursor: _Cursor) -> None:
        try:
            cursor.execute("ROLLBACK")
        except self._errors:
            pass

    # -- writing
    def record_card(self, card: str, *, cplc: bytes | None = None, atr: bytes | None = None,
                    card_type: str | None = None, registry: CardContents | None = None,
                    profile: str | None = None) -> None:
        """The card as seen now: identity, life cycle and, with ``registry``, its whole contents."""
        now = time.time()
        life = registry.isd.state if registry is not None and registry.isd is not None else None
        with self.transaction(write_only=True) as cur:
            cur.execute(
                "INSERT INTO inv_cards (card, cplc, atr, card_type, life_cycle, profile, first_seen, last_seen, "
                "station) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (card) DO UPDATE SET "
                "cplc = COALESCE(excluded.cplc, inv_cards.cplc), atr = COALESCE(excluded.atr, inv_cards.atr), "
                "card_type = COALESCE(excluded.card_type, inv_cards.card_type), "
                "life_cycle = COALESCE(excluded.life_cycle, inv_cards.life_cycle), "
                "profile = COALESCE(excluded.profile, inv_cards.profile), "
                "last_seen = excluded.last_seen, station = excluded.station",
                (card, cplc.hex().upper() if cplc else None, atr.hex().upper() if atr else None, card_type, life,
                 profile, now, now, self.station))
            if registry is not None:
                cur.execute("DELETE FROM inv_contents WHERE card = ?", (card,))
                cur.executemany("INSERT INTO inv_contents (card, aid, kind, state, parent, detail, updated_at) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?)", [(card, *row, now) for row in _content_rows(registry)])

    def record_event(self, card: str, action: str, outcome: str, target: str | None = None,
                     detail: str | None = None) -> None:
        with self.transaction(write_only=True) as cur:
            cur.execute("INSERT INTO inv_events (card, at, station, action, target, outcome, detail) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (card, time.time(), self.station, action, target, outcome, detail))

    def record_keys(self, card: str, kvn: int, key_set: str) -> None:
        """Which key set the card holds now (``rotating``: a PUT KEY was sent and its outcome is not known)."""
        with self.transaction(write_only=True) as cur:
            cur.execute("INSERT INTO inv_keys (card, kvn, key_set, updated_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (card) DO UPDATE SET kvn = excluded.kvn, key_set = excluded.key_set, "
                        "updated_at = excluded.updated_at", (card, kvn, key_set, time.time()))

    # -- reading
    def _read(self, sql: str, args: Sequence[object] = ()) -> list[tuple]:
        """One SELECT as its own transaction (autocommit: one round trip on PostgreSQL, not three)."""
        settle_writes()
        cursor = _Cursor(self._db.cursor(), self.dialect)
        try:
            return cursor.fetchall(sql, args)
        except self._errors as exc:
            raise self._error(exc) from None
        finally:
            cursor.close()

    def keys(self, card: str) -> KeyRecord | None:
        rows = self._read("SELECT card, kvn, key_set FROM inv_keys WHERE card = ?", (card,))
        return KeyRecord(*rows[0]) if rows else None

    def cards(self) -> list[CardRecord]:
        rows = self._read("SELECT card, cplc, atr, card_type, life_cycle, profile, first_seen, last_seen, "
                          "station FROM inv_cards ORDER BY first_seen, card")
        return [CardRecord(*row) for row in rows]

    def card(self, card: str) -> CardRecord | None:
        """One card by its identity (the primary key's index)."""
        return self._one_card("card = ?", card)

    def card_with_cplc(self, cplc: bytes) -> CardRecord | None:
        """One card by its whole CPLC (indexed)."""
        return self._one_card("cplc = ?", cplc.hex().upper())

    def _one_card(self, where: str, value: str) -> CardRecord | None:
        rows = self._read("SELECT card, cplc, atr, card_type, life_cycle, profile, first_seen, last_seen, "
                          f"station FROM inv_cards WHERE {where}", (value,))
        return CardRecord(*rows[0]) if rows else None

    def contents(self, card: str) -> list[ContentRecord]:
        rows = self._read("SELECT card, aid, kind, state, parent, detail FROM inv_contents WHERE card = ? "
                          "ORDER BY kind, aid", (card,))
        return [ContentRecord(*row) for row in rows]

    def events(self, card: str | None = None) -> list[EventRecord]:
        where, args = ("WHERE card = ? ", (card,)) if card is not None else ("", ())
        rows = self._read("SELECT id, card, at, station, action, target, outcome, detail FROM inv_events "
                          f"{where}ORDER BY id", args)
        return [EventRecord(*row) for row in rows]


def connection_idle(connection: Any) -> bool:
    """An sqlite3 or psycopg connection that is open and in no transaction."""
    if isinstance(connection, sqlite3.Connection):
        try:
            return not connection.in_transaction
        except sqlite3.ProgrammingError:  # closed
            return False
    return not connection.closed and connection.info.transaction_status == 0  # psycopg's IDLE


def write_batch(connection: Any, batched: bool) -> AbstractContextManager[object]:
    """psycopg's pipeline mode when ``batched`` (PostgreSQL): statements are sent without waiting for each
    answer and their results arrive together at the end, so a transaction of N statements costs one round trip,
    not N + 2. Only for statements whose results nobody reads before the end (a row count reads -1)."""
    return connection.pipeline() if batched else nullcontext()


# -- write-behind (PostgreSQL, for a connection opened with write_behind=True)
# A write-only transaction is kept as its statements and committed (one batch, write_batch) by a thread of its
# own while the caller goes on; one made while the thread's commits are still under way is committed after
# them, in a chain (the caller does not wait). Any other operation of the thread (a read, a statement, a
# transaction committed at once), on any connection, waits for the chain first and raises what refused it.
# So a thread's transactions stay durable in the order it made them (none after a refused one is committed)
# and it reads its own writes; only the wait moves, from the end of the transaction to the next operation
# that needs it. The ADS: a step's records are committed while the terminal runs the next step's commands, not
# before they go out (2026-12-03: 14 commits and their rows, ~15 ms of a lone post-issuance's ~130 ms).
# .pending: this thread's last commit under way (a future that ends after those before it and raises what
# refused any of them), or None
_BEHIND = threading.local()
_COMMITTERS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="write-behind")  # one per writing thread


class _KeptStatements:
    """A DB-API cursor's stand-in in a write-only transaction: keeps the statements to be sent at its end."""

    rowcount = -1  # as in a batch: nothing is read back

    def __init__(self) -> None:
        self.kept: list[tuple[str, Any, bool]] = []  # (sql, arguments or rows, whether executemany)

    def execute(self, sql: str, args: tuple) -> None:
        self.kept.append((sql, args, False))

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        self.kept.append((sql, rows, True))

    def fetchall(self) -> list[tuple]:
        raise TypeError("a write-only transaction reads nothing back")

    def close(self) -> None:
        pass


# Many rows of a plain INSERT go in as COPY … FROM STDIN, not executemany: an ADS step's APDU exchanges (2026-12-04,
# 108 rows in one transaction: 0.36 against 1.49 ms of the committer's CPU, 0.89 against 1.77 ms). COPY cannot
# go in a pipeline: the statements around it are sent in pipelines of their own, in order.
_COPYABLE = re.compile(r"INSERT INTO (\w+) \(([\w, ]+)\) VALUES \(%s(?:, %s)*\)")
COPY_FROM_ROWS = 16  # fewer go in the pipeline (a COPY is a round trip of its own)


def _commit_kept(connection: Any, kept: list[tuple[str, Any, bool]]) -> None:
    cursor = connection.cursor()

    def pipelined(statements: list[tuple[str, Any, bool]]) -> None:
        with connection.pipeline():
            for sql, args, many in statements:
                (cursor.executemany if many else cursor.execute)(sql, args)

    try:
        batch: list[tuple[str, Any, bool]] = [("BEGIN", (), False)]
        for sql, args, many in kept:
            copyable = _COPYABLE.fullmatch(sql) if many and len(args) >= COPY_FROM_ROWS else None
            if copyable is None:
                batch.append((sql, args, many))
                continue
            if batch:  # an empty pipeline would still cost a round trip (its sync)
                pipelined(batch)
                batch = []
            with cursor.copy(f"COPY {copyable[1]} ({copyable[2]}) FROM STDIN") as rows:
                for row in args:
                    rows.write_row(row)
        pipelined([*batch, ("COMMIT", (), False)])
    except BaseException:
        try:
            cursor.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - the connection may be gone: the first error is the one to tell
            pass
        raise
    finally:
        cursor.close()


def _commit_after(previous: Future | None, connection: Any, kept: list[tuple[str, Any, bool]],
                  wrap: Callable[[BaseException], BaseException]) -> Future:
    """The future of the kept statements' commit, begun once the commit before them has ended (not at all
    when that one was refused: its error is this one's too). No committer thread waits meanwhile: a chain
    of N commits holds one thread, not N."""
    chained: Future = Future()

    def commit() -> None:
        try:
            _commit_kept(connection, kept)
        except BaseException as exc:  # noqa: BLE001 - raised by whoever waits for the chain
            chained.set_exception(wrap(exc))
        else:
            chained.set_result(None)

    def begin(before: Future | None) -> None:
        error = before.exception() if before is not None else None
        if error is not None:
            chained.set_exception(error)
        else:
            _COMMITTERS.submit(commit)

    if previous is None:
        begin(None)
    else:
        previous.add_done_callback(begin)
    return chained


def _refused_already() -> None:
    """Raises (once) what refused this thread's commits, if they have ended so; never waits."""
    pending: Future | None = getattr(_BEHIND, "pending", None)
    if pending is not None and pending.done():
        settle_writes()


def settle_writes() -> None:
    """Waits for this thread's write-behind commits, if any are under way, and raises what refused them
    (once)."""
    pending: Future | None = getattr(_BEHIND, "pending", None)
    if pending is None:
        return
    _BEHIND.pending = None
    error = pending.exception()
    if error is not None:
        raise error


@contextmanager
def kept_transaction(connection: Any, dialect: Dialect, wrap: Callable[[BaseException], BaseException],
                     current: Callable[[_Cursor | None], None]) -> Iterator[_Cursor]:
    """A write-only transaction whose statements are kept and committed behind the caller's back (see
    _BEHIND), after the thread's commits under way, when its body ends without an error (else nothing was
    sent). ``current``: told the open transaction's cursor, then None (for writers that join it). ``wrap``:
    the database's error as raised."""
    _refused_already()
    kept = _KeptStatements()
    cursor = _Cursor(kept, dialect)
    current(cursor)
    try:
        yield cursor
    finally:
        current(None)
    _BEHIND.pending = _commit_after(getattr(_BEHIND, "pending", None), connection, kept.kept, wrap)


class _Cursor:
    """A DB-API cursor that takes ``?`` placeholders whatever the database."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self._dialect = dialect

    def execute(self, sql: str, args: Sequence[object] = ()) -> int:
        """Runs one statement; the number of rows it changed (a conditional UPDATE's claim)."""
        self._cursor.execute(self._dialect.sql(sql), tuple(args))
        return self._cursor.rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """One statement for many rows (psycopg pipelines them: one round trip, not one per row)."""
        if rows:
            self._cursor.executemany(self._dialect.sql(sql), [tuple(row) for row in rows])

    def fetchall(self, sql: str, args: Sequence[object] = ()) -> list[tuple]:
        self.execute(sql, args)
        return [tuple(row) for row in self._cursor.fetchall()]

    def close(self) -> None:
        self._cursor.close()


def _content_rows(registry: CardContents) -> list[tuple[str, str, str, str | None, str | None]]:
    rows = []
    for app in registry.applications:
        rows.append((app.aid.hex().upper(), app.kind, app.state,
                     app.load_file.hex().upper() if app.load_file else None, ",".join(app.privilege_names) or None))
    for load_file in registry.load_files:
        modules = " ".join(m.hex().upper() for m in load_file.modules)
        version = f"v{load_file.version_string} " if load_file.version_string else ""
        rows.append((load_file.aid.hex().upper(), "PKG", load_file.state, None, (version + modules).strip() or None))
    return rows
