"""Brick guard: one failed authentication per card and key set, then nothing until told explicitly.

A GlobalPlatform card counts failed authentications and, after a handful (often 3 to 10, unknown in
advance), locks its security domain for good. A loader retrying in a loop, or a station that retries
every card of a batch with the wrong key profile, destroys cards. So after one failure the pair (card,
key set) is recorded and every later attempt is refused before a single APDU is sent, until the
operator says so (``force=True``, ``--retry-auth``). A success clears the record.

The record lives in the state directory (settings: never under build/, never relative to the working
folder), since forgetting it is what bricks cards. It is a small SQLite table (stdlib ``sqlite3``, one
transaction per change, like the wallet's registry). Key sets are recorded by a fingerprint, never by value.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from cardsuite.errors import CardsuiteError, ConfigurationError
from cardsuite.gp.scp import KeySet
from cardsuite.settings import make_private_parent

SCHEMA = """
CREATE TABLE IF NOT EXISTS gp_auth_failures (
    card        TEXT NOT NULL,      -- card identity: CPLC-derived, or reader + ATR
    keys        TEXT NOT NULL,      -- key set fingerprint (HMAC-SHA256, truncated), never the keys
    kvn         INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    sw          INTEGER,            -- the card's status word when it gave one
    failures    INTEGER NOT NULL,   -- attempts made anyway with force
    first_at    REAL NOT NULL,
    last_at     REAL NOT NULL,
    PRIMARY KEY (card, keys)
);
"""
_FINGERPRINT_LABEL = b"cardsuite gp brick guard v1"


class BrickGuardError(CardsuiteError):
    """A previous authentication with these keys failed on this card; trying again could lock it."""


@dataclass(frozen=True)
class Failure:
    card: str
    keys: str
    kvn: int
    reason: str
    sw: int | None
    failures: int
    first_at: float
    last_at: float


def key_fingerprint(keys: KeySet) -> str:
    """Recognises a key set again without storing it (keyed hash, so a table leak gives no KCV)."""
    material = keys.fingerprint_material
    return hmac.new(_FINGERPRINT_LABEL, material, hashlib.sha256).hexdigest()[:32]


class BrickGuard:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            make_private_parent(self.path)
            with closing(self._connect()) as db, db:
                db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot use the brick guard database {self.path}: {exc}") from None

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

    def failure(self, card: str, keys: KeySet) -> Failure | None:
        with closing(self._connect()) as db:
            row = db.execute("SELECT card, keys, kvn, reason, sw, failures, first_at, last_at "
                             "FROM gp_auth_failures WHERE card = ? AND keys = ?",
                             (card, key_fingerprint(keys))).fetchone()
        return Failure(*row) if row else None

    def check(self, card: str, keys: KeySet, force: bool = False) -> None:
        """Raises BrickGuardError when these keys already failed on this card, unless forced."""
        failed = self.failure(card, keys)
        if failed is None or force:
            return
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(failed.last_at))
        sw = f" (card said {failed.sw:04X})" if failed.sw is not None else ""
        raise BrickGuardError(
            f"authentication with this key set (key version 0x{failed.kvn:02X}) already failed on this card at "
            f"{when}: {failed.reason}{sw}. Not trying again: each failure counts towards locking the card. "
            "Check the keys, then retry explicitly (--retry-auth / force=True)")

    @contextmanager
    def attempt(self, card: str, keys: KeySet, force: bool = False, *,
                counts: Callable[[Exception], str | None]) -> Iterator[None]:
        """One authentication under the guard: refused before the body runs (nothing sent) when these keys
        already failed on this card, unless ``force``; an exception the card counts (``counts`` gives the
        reason to record, None for one it does not count) is recorded and raised again; success clears."""
        self.check(card, keys, force)
        try:
            yield
        except Exception as exc:
            reason = counts(exc)
            if reason is not None:
                self.record_failure(card, keys, reason, getattr(exc, "sw", None))
            raise
        self.record_success(card, keys)

    def record_failure(self, card: str, keys: KeySet, reason: str, sw: int | None = None) -> None:
        now = time.time()
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO gp_auth_failures (card, keys, kvn, reason, sw, failures, first_at, last_at) "
                "VALUES (?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT (card, keys) DO UPDATE SET "
                "reason = excluded.reason, sw = excluded.sw, failures = failures + 1, last_at = excluded.last_at",
                (card, key_fingerprint(keys), keys.kvn, reason, sw, now, now))
            db.execute("COMMIT")

    def record_success(self, card: str, keys: KeySet) -> None:
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM gp_auth_failures WHERE card = ? AND keys = ?", (card, key_fingerprint(keys)))
            db.execute("COMMIT")

    def failures(self) -> list[Failure]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT card, keys, kvn, reason, sw, failures, first_at, last_at "
                              "FROM gp_auth_failures ORDER BY last_at").fetchall()
        return [Failure(*row) for row in rows]
