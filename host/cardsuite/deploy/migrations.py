"""Schema migrations for the databases cardsuite keeps on SQLite or PostgreSQL (the inventory here, the SCMS's
in cardsuite.scms.schema): an ordered list, each migration applied in one transaction that records the version
it reaches in the schema's version table, so a migration is wholly applied and recorded or not at all.

Several processes may open one PostgreSQL database at once (two ``serve``s, stations of a fleet): the
migrating process holds the schema's advisory lock while each migration's transaction reads the version and
applies the next one, so one process migrates and the others wait and then find the work done. On SQLite the
caller's BEGIN IMMEDIATE is that lock. A database at a version above the code's (a newer cardsuite migrated
it) is refused in one line.

A database made before versions were recorded is at version 0: a schema's first migrations are written to be
no-ops on whatever of them it already has (IF NOT EXISTS, counted only when empty). Never edit a released
migration: add one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from cardsuite.errors import ConfigurationError


class NewerSchema(ConfigurationError):
    """The database was migrated by a newer cardsuite than this one."""


@dataclass(frozen=True)
class Migration:
    version: int  # what the database is at once it is applied
    summary: str
    apply: Callable[[Any, bool], None]  # (cursor in the migration's transaction, whether SQLite)


@dataclass(frozen=True)
class Schema:
    what: str  # for the messages: "the SCMS database", "the inventory"
    table: str  # the version table: one row per migration applied
    lock: int  # pg_advisory_xact_lock key
    migrations: tuple[Migration, ...]

    def __post_init__(self) -> None:
        assert [m.version for m in self.migrations] == list(range(1, len(self.migrations) + 1)), \
            "migrations are numbered 1, 2, ... in order"

    @property
    def version(self) -> int:
        return self.migrations[-1].version

    def recorded(self, cur: Any, sqlite: bool) -> int:
        """The version the database is at (0: made before versions were recorded, or empty)."""
        if sqlite:
            present = bool(cur.fetchall("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                        (self.table,)))
        else:
            present = cur.fetchall("SELECT to_regclass(?)", (self.table,))[0][0] is not None
        if not present:
            return 0
        return int(cur.fetchall(f"SELECT COALESCE(MAX(version), 0) FROM {self.table}")[0][0])

    def refuse_newer(self, version: int) -> None:
        if version > self.version:
            raise NewerSchema(f"{self.what} is at schema version {version}, newer than this cardsuite's "
                              f"{self.version}: run a cardsuite that knows it (or restore the database)")

    def migrate(self, transaction: Callable[[], AbstractContextManager[Any]], connection: Any, sqlite: bool) -> int:
        """Every migration the database lacks, each in a ``transaction()`` of its own (BEGIN IMMEDIATE on
        SQLite: the file's write lock); returns the version reached. On PostgreSQL the schema's advisory lock
        is held on ``connection`` (autocommit) around them, taken before each transaction begins: a
        transaction begun before another process's migration committed could read the catalog as it was
        (its cached view of the tables is refreshed when a transaction starts, not when an advisory lock is
        granted) and apply that migration a second time."""
        if not sqlite:
            connection.execute(f"SELECT pg_advisory_lock({self.lock})")
        try:
            while True:
                with transaction() as cur:
                    if self.migrate_one(cur, sqlite) is None:
                        return self.version
        finally:
            if not sqlite:
                connection.execute(f"SELECT pg_advisory_unlock({self.lock})")

    def migrate_one(self, cur: Any, sqlite: bool) -> int | None:
        """In the caller's transaction (under migrate's lock): the next migration the database lacks, recorded;
        returns the version reached, or None when it is at ``version`` already."""
        version = self.recorded(cur, sqlite)
        self.refuse_newer(version)
        if version == self.version:
            return None
        migration = self.migrations[version]
        migration.apply(cur, sqlite)
        cur.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (version INTEGER PRIMARY KEY, summary TEXT NOT NULL, "
                    "applied_at DOUBLE PRECISION NOT NULL)")
        cur.execute(f"INSERT INTO {self.table} (version, summary, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.summary, time.time()))
        return migration.version
