"""The issuer's and the merchant's records in one SQLite file (stdlib ``sqlite3``).

The schema is created on first use and versioned with ``PRAGMA user_version``; a file written by a
newer cardsuite is refused rather than guessed at. Every change runs in one transaction
(``BEGIN IMMEDIATE``), so two processes sharing a file serialise, and a failure leaves nothing half done.
The file uses a write-ahead log (``name-wal`` beside it until checkpointed); ``export`` makes a single-file
copy.

What is stored is chosen for [P001]: the issuer keeps H(R-Card) (keyed), PKC and V-Card, never the
card number itself (only its masked form for people to read); the merchant keeps each signed σ with
its signature and the PKC it verified, which is the evidence a third party can check later.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cardsuite.errors import ConfigurationError
from cardsuite.settings import make_private_parent
from cardsuite.sqlitefile import use_write_ahead_log

SCHEMA_VERSION = 2
BUSY_SECONDS = 10.0  # another process's transaction waited for (SQLite's busy timeout)

# One entry per version: the statements that bring the previous version to it.
_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE issuer_accounts (
        id          INTEGER PRIMARY KEY,
        holder      TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('active', 'blocked', 'closed')),
        proofing    TEXT,               -- identity proofing evidence, recorded at enrolment ([P002])
        proofed_at  REAL,
        created_at  REAL NOT NULL
    );
    CREATE TABLE issuer_cards (
        id           INTEGER PRIMARY KEY,
        account_id   INTEGER NOT NULL REFERENCES issuer_accounts (id),
        iin          TEXT NOT NULL,
        masked       TEXT NOT NULL,
        number_hash  BLOB NOT NULL UNIQUE,   -- H(R-Card), keyed by the issuer, never the number
        holder_info  BLOB NOT NULL UNIQUE,   -- the client info the card puts into σ
        state        TEXT NOT NULL CHECK (state IN ('personalised', 'enrolled', 'replaced', 'revoked')),
        max_balance  INTEGER NOT NULL,
        max_payment  INTEGER NOT NULL,
        step_up      INTEGER NOT NULL,
        pkc          BLOB,
        v_card       BLOB UNIQUE,
        enrolled_at  REAL,
        last_counter INTEGER NOT NULL DEFAULT 0,
        created_at   REAL NOT NULL
    );
    CREATE INDEX issuer_cards_account ON issuer_cards (account_id);
    CREATE TABLE issuer_blacklist (
        id         INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES issuer_accounts (id),
        reason     TEXT NOT NULL,
        listed_at  REAL NOT NULL,
        lifted_at  REAL
    );
    CREATE TABLE issuer_credits (
        id        INTEGER PRIMARY KEY,
        card_id   INTEGER NOT NULL REFERENCES issuer_cards (id),
        amount    INTEGER NOT NULL,
        reference BLOB NOT NULL,
        at        REAL NOT NULL
    );
    CREATE TABLE issuer_authorisations (
        id          INTEGER PRIMARY KEY,
        card_id     INTEGER REFERENCES issuer_cards (id),
        merchant_id BLOB NOT NULL,
        amount      INTEGER NOT NULL,
        ts_m        INTEGER NOT NULL,
        counter     INTEGER NOT NULL,
        approved    INTEGER NOT NULL,
        reason      TEXT NOT NULL,
        code        TEXT,
        at          REAL NOT NULL
    );
    CREATE TABLE merchant_requests (
        merchant_id BLOB NOT NULL,
        ts_m        INTEGER NOT NULL,
        amount      INTEGER NOT NULL,
        item        BLOB NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('open', 'pending', 'approved', 'refused')),
        reason      TEXT,
        created_at  REAL NOT NULL,
        PRIMARY KEY (merchant_id, ts_m)
    );
    CREATE TABLE merchant_evidence (
        id          INTEGER PRIMARY KEY,
        merchant_id BLOB NOT NULL,
        ts_m        INTEGER NOT NULL,
        iin         TEXT NOT NULL,
        amount      INTEGER NOT NULL,
        sigma       BLOB NOT NULL,
        signature   BLOB NOT NULL,
        pkc         BLOB NOT NULL,
        h_rcard     BLOB NOT NULL,
        v_card      BLOB NOT NULL,
        auth_code   TEXT NOT NULL,
        at          REAL NOT NULL,
        UNIQUE (merchant_id, ts_m)
    );
    """,
    # 2: write-ahead issuance. A card is recorded as 'personalising' (with the chip and the applet instance it
    # goes onto) and committed before its PERSONALISE command is sent, so a host killed in between leaves a
    # record a later run can finish, never a personalised card nobody knows. SQLite cannot change a CHECK
    # constraint in place: the table is rebuilt (https://sqlite.org/lang_altertable.html, "other kinds of
    # table schema changes"), with foreign keys off around the migration.
    2: """
    CREATE TABLE issuer_cards_v2 (
        id           INTEGER PRIMARY KEY,
        account_id   INTEGER NOT NULL REFERENCES issuer_accounts (id),
        iin          TEXT NOT NULL,
        masked       TEXT NOT NULL,
        number_hash  BLOB NOT NULL UNIQUE,
        holder_info  BLOB NOT NULL UNIQUE,
        state        TEXT NOT NULL CHECK (state IN ('personalising', 'personalised', 'enrolled', 'replaced',
                                                    'revoked')),
        max_balance  INTEGER NOT NULL,
        max_payment  INTEGER NOT NULL,
        step_up      INTEGER NOT NULL,
        pkc          BLOB,
        v_card       BLOB UNIQUE,
        enrolled_at  REAL,
        last_counter INTEGER NOT NULL DEFAULT 0,
        created_at   REAL NOT NULL,
        chip         TEXT,               -- the chip it was issued onto (CPLC identity), when known
        instance     TEXT                -- the wallet's instance AID on that chip (hex)
    );
    INSERT INTO issuer_cards_v2 (id, account_id, iin, masked, number_hash, holder_info, state, max_balance,
        max_payment, step_up, pkc, v_card, enrolled_at, last_counter, created_at)
        SELECT id, account_id, iin, masked, number_hash, holder_info, state, max_balance, max_payment, step_up,
        pkc, v_card, enrolled_at, last_counter, created_at FROM issuer_cards;
    DROP TABLE issuer_cards;
    ALTER TABLE issuer_cards_v2 RENAME TO issuer_cards;
    CREATE INDEX issuer_cards_account ON issuer_cards (account_id);
    CREATE INDEX issuer_cards_chip ON issuer_cards (chip, instance)
    """,
}


class WalletStoreError(ConfigurationError):
    """The database file cannot be used (newer schema, not a cardsuite database, unreadable)."""


def _now() -> float:
    return time.time()


# ---------------------------------------------------------------- rows


class AuthorisationRecord(Protocol):
    """What the issuer records of an authorisation request (issuer.AuthorisationRequest has it)."""

    merchant_id: bytes
    amount: int
    ts_m: int
    counter: int


class SignedPayment(Protocol):
    """σ as the merchant keeps it (wallet.Sigma has it)."""

    raw: bytes
    merchant_id: bytes
    ts_m: int
    iin: str
    amount: int


@dataclass(frozen=True)
class AccountRow:
    id: int
    holder: str
    status: str
    proofing: str | None
    proofed_at: float | None
    created_at: float


@dataclass(frozen=True)
class CardRow:
    id: int
    account_id: int
    iin: str
    masked: str
    number_hash: bytes
    holder_info: bytes
    state: str
    max_balance: int
    max_payment: int
    step_up: int
    pkc: bytes | None
    v_card: bytes | None
    enrolled_at: float | None
    last_counter: int
    created_at: float
    chip: str | None = None
    instance: str | None = None

    @property
    def pending(self) -> bool:
        """Recorded before personalisation and not yet confirmed done (a host stopped in between)."""
        return self.state == "personalising"


@dataclass(frozen=True)
class EvidenceRow:
    """A payment the merchant kept: σ exactly as signed, the signature and the PKC it verified with."""

    id: int
    merchant_id: bytes
    ts_m: int
    iin: str
    amount: int
    sigma: bytes
    signature: bytes
    pkc: bytes
    h_rcard: bytes
    v_card: bytes
    auth_code: str
    at: float


@dataclass(frozen=True)
class RequestRow:
    merchant_id: bytes
    ts_m: int
    amount: int
    item: bytes
    state: str
    reason: str | None
    created_at: float


# ---------------------------------------------------------------- the file


class WalletStore:
    """One SQLite file; ``transaction()`` around every change. ``read_only`` opens an existing file for
    reading: nothing is created (no folder, no file, no table), nothing migrated, every write refused."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._depth = 0
        if read_only and not self.path.is_file():
            raise WalletStoreError(f"no database at {self.path} (nothing recorded there yet)")
        try:
            if read_only:
                # mode=rw (not ro): the file must exist, and the last reader to close removes the -wal and
                # -shm files it needed, where a mode=ro connection would leave them behind
                self.db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None,
                                          timeout=BUSY_SECONDS)
                self.db.execute("PRAGMA query_only = ON")
                self._check_readable()
            else:
                make_private_parent(self.path)
                self.db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_SECONDS)
                self._migrate()
                # write-ahead log: one fsync per commit (durable: synchronous FULL), readers beside a writer
                use_write_ahead_log(self.db, BUSY_SECONDS)
                self.db.execute("PRAGMA synchronous = FULL")
            self.db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise WalletStoreError(f"{self.path}: not a usable cardsuite database ({exc})") from None

    def close(self) -> None:
        self.db.close()

    def export(self, path: Path | str) -> Path:
        """A consistent copy of the whole database in one file (e.g. the evidence for an auditor)."""
        target = Path(path)
        with sqlite3.connect(target) as copy:
            self.db.backup(copy)
        copy.close()
        return target

    def files(self) -> list[Path]:
        """The database file and its write-ahead log, where they exist."""
        candidates = [self.path, self.path.with_name(self.path.name + "-wal")]
        return [p for p in candidates if p.exists()]

    def __enter__(self) -> WalletStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_readable(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            raise WalletStoreError(f"{self.path} is not a cardsuite database")
        if version > SCHEMA_VERSION:
            raise WalletStoreError(f"{self.path} has schema version {version}; this cardsuite knows up to "
                                f"{SCHEMA_VERSION}: upgrade cardsuite")
        if version < SCHEMA_VERSION:
            raise WalletStoreError(f"{self.path} has the older schema version {version}: any command that writes "
                                "to it (e.g. wallet personalise) upgrades it")

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise WalletStoreError(f"{self.path} has schema version {version}; this cardsuite knows up to "
                                f"{SCHEMA_VERSION}: upgrade cardsuite")
        if version == 0 and self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise WalletStoreError(f"{self.path} is an SQLite file but not a cardsuite database")
        # foreign keys off while tables are rebuilt (PRAGMA foreign_keys is a no-op inside a transaction);
        # checked as a whole before each commit instead
        self.db.execute("PRAGMA foreign_keys = OFF")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                for statement in _MIGRATIONS[target].split(";"):  # no ";" inside the statements
                    if statement.strip():
                        self.db.execute(statement)
                if self.db.execute("PRAGMA foreign_key_check").fetchone() is not None:
                    raise WalletStoreError(f"{self.path}: migration to schema {target} broke a reference")
                self.db.execute(f"PRAGMA user_version = {target}")

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception. Nested, it is a savepoint inside the
        outer transaction (an issuer and a merchant sharing one WalletStore)."""
        if self._depth:
            name = f"sp{self._depth}"
            self.db.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self.db
            except BaseException:
                self.db.execute(f"ROLLBACK TO {name}")
                self.db.execute(f"RELEASE {name}")
                raise
            finally:
                self._depth -= 1
            self.db.execute(f"RELEASE {name}")
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0
        self.db.execute("COMMIT")

    # -- meta
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    # -- issuer: accounts
    def add_account(self, holder: str) -> int:
        cursor = self.db.execute("INSERT INTO issuer_accounts (holder, status, created_at) VALUES (?, 'active', ?)",
                                 (holder, _now()))
        return int(cursor.lastrowid)

    def account(self, account_id: int) -> AccountRow | None:
        row = self.db.execute("SELECT id, holder, status, proofing, proofed_at, created_at FROM issuer_accounts "
                              "WHERE id = ?", (account_id,)).fetchone()
        return None if row is None else AccountRow(*row)

    def accounts(self) -> list[AccountRow]:
        rows = self.db.execute("SELECT id, holder, status, proofing, proofed_at, created_at FROM issuer_accounts "
                               "ORDER BY id").fetchall()
        return [AccountRow(*row) for row in rows]

    def set_account_status(self, account_id: int, status: str) -> None:
        self.db.execute("UPDATE issuer_accounts SET status = ? WHERE id = ?", (status, account_id))

    def record_proofing(self, account_id: int, evidence: str) -> None:
        self.db.execute("UPDATE issuer_accounts SET proofing = ?, proofed_at = ? WHERE id = ?",
                        (evidence, _now(), account_id))

    def blacklist(self, account_id: int, reason: str) -> None:
        self.db.execute("INSERT INTO issuer_blacklist (account_id, reason, listed_at) VALUES (?, ?, ?)",
                        (account_id, reason, _now()))

    def lift_blacklist(self, account_id: int) -> None:
        self.db.execute("UPDATE issuer_blacklist SET lifted_at = ? WHERE account_id = ? AND lifted_at IS NULL",
                        (_now(), account_id))

    def blacklisted(self, account_id: int) -> str | None:
        """The reason an account is on the blacklist now, or None."""
        row = self.db.execute("SELECT reason FROM issuer_blacklist WHERE account_id = ? AND lifted_at IS NULL "
                              "ORDER BY id DESC", (account_id,)).fetchone()
        return None if row is None else row[0]

    # -- issuer: cards
    _CARD_COLUMNS = ("id, account_id, iin, masked, number_hash, holder_info, state, max_balance, max_payment, "
                     "step_up, pkc, v_card, enrolled_at, last_counter, created_at, chip, instance")

    def add_card(self, account_id: int, *, iin: str, masked: str, number_hash: bytes, holder_info: bytes,
                 limits: tuple[int, int, int], state: str = "personalised", chip: str | None = None,
                 instance: bytes | None = None) -> int:
        """A card; ``limits`` are max balance, max per payment and the step-up threshold. ``state``
        'personalising' records it before the card is touched (write-ahead), on ``chip`` at ``instance``."""
        max_balance, max_payment, step_up = limits
        cursor = self.db.execute(
            "INSERT INTO issuer_cards (account_id, iin, masked, number_hash, holder_info, state, max_balance, "
            "max_payment, step_up, created_at, chip, instance) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (account_id, iin, masked, number_hash, holder_info, state, max_balance, max_payment, step_up, _now(),
             chip, instance.hex().upper() if instance is not None else None))
        return int(cursor.lastrowid)

    def cards_on_chip(self, chip: str, instance: bytes) -> list[CardRow]:
        """The cards issued onto this applet instance of this chip, newest first."""
        rows = self.db.execute(f"SELECT {self._CARD_COLUMNS} FROM issuer_cards WHERE chip = ? AND instance = ? "
                               "ORDER BY id DESC", (chip, instance.hex().upper())).fetchall()
        return [CardRow(*row) for row in rows]

    def set_holder_info(self, card_id: int, holder_info: bytes) -> None:
        self.db.execute("UPDATE issuer_cards SET holder_info = ? WHERE id = ?", (holder_info, card_id))

    def _card_where(self, clause: str, *params: object) -> CardRow | None:
        row = self.db.execute(f"SELECT {self._CARD_COLUMNS} FROM issuer_cards WHERE {clause}", params).fetchone()
        return None if row is None else CardRow(*row)

    def card(self, card_id: int) -> CardRow | None:
        return self._card_where("id = ?", card_id)

    def card_by_holder_info(self, holder_info: bytes) -> CardRow | None:
        return self._card_where("holder_info = ?", holder_info)

    def card_by_number_hash(self, number_hash: bytes) -> CardRow | None:
        return self._card_where("number_hash = ?", number_hash)

    def current_card(self, account_id: int) -> CardRow | None:
        """The account's newest card that is not replaced or revoked."""
        return self._card_where("account_id = ? AND state IN ('personalised', 'enrolled') ORDER BY id DESC",
                                account_id)

    def cards(self, account_id: int | None = None) -> list[CardRow]:
        where, params = ("WHERE account_id = ?", (account_id,)) if account_id is not None else ("", ())
        rows = self.db.execute(f"SELECT {self._CARD_COLUMNS} FROM issuer_cards {where} ORDER BY id", params)
        return [CardRow(*row) for row in rows.fetchall()]

    def bind_card(self, card_id: int, pkc: bytes, v_card: bytes) -> None:
        self.db.execute("UPDATE issuer_cards SET state = 'enrolled', pkc = ?, v_card = ?, enrolled_at = ? "
                        "WHERE id = ?", (pkc, v_card, _now(), card_id))

    def set_card_state(self, card_id: int, state: str) -> None:
        self.db.execute("UPDATE issuer_cards SET state = ? WHERE id = ?", (state, card_id))

    def advance_counter(self, card_id: int, counter: int) -> None:
        self.db.execute("UPDATE issuer_cards SET last_counter = ? WHERE id = ?", (counter, card_id))

    def add_credit(self, card_id: int, amount: int, reference: bytes) -> None:
        self.db.execute("INSERT INTO issuer_credits (card_id, amount, reference, at) VALUES (?, ?, ?, ?)",
                        (card_id, amount, reference, _now()))

    def credited(self, card_id: int) -> int:
        return int(self.db.execute("SELECT coalesce(sum(amount), 0) FROM issuer_credits WHERE card_id = ?",
                                   (card_id,)).fetchone()[0])

    def add_authorisation(self, card_id: int | None, request: AuthorisationRecord, approved: bool, reason: str,
                          code: str | None) -> None:
        self.db.execute(
            "INSERT INTO issuer_authorisations (card_id, merchant_id, amount, ts_m, counter, approved, reason, code, "
            "at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (card_id, request.merchant_id, request.amount, request.ts_m, request.counter, int(approved), reason, code,
             _now()))

    def authorisations(self, card_id: int) -> list[tuple[int, int, bool, str]]:
        """(amount, counter, approved, reason) of a card's authorisations, oldest first."""
        rows = self.db.execute("SELECT amount, counter, approved, reason FROM issuer_authorisations "
                               "WHERE card_id = ? ORDER BY id", (card_id,)).fetchall()
        return [(amount, counter, bool(approved), reason) for amount, counter, approved, reason in rows]

    # -- merchant
    def add_request(self, merchant_id: bytes, ts_m: int, amount: int, item: bytes) -> None:
        self.db.execute("INSERT INTO merchant_requests (merchant_id, ts_m, amount, item, state, created_at) "
                        "VALUES (?, ?, ?, ?, 'open', ?)", (merchant_id, ts_m, amount, item, _now()))

    def last_ts_m(self, merchant_id: bytes) -> int:
        row = self.db.execute("SELECT max(ts_m) FROM merchant_requests WHERE merchant_id = ?",
                              (merchant_id,)).fetchone()
        return int(row[0] or 0)

    def request(self, merchant_id: bytes, ts_m: int) -> RequestRow | None:
        row = self.db.execute("SELECT merchant_id, ts_m, amount, item, state, reason, created_at FROM "
                              "merchant_requests WHERE merchant_id = ? AND ts_m = ?", (merchant_id, ts_m)).fetchone()
        return None if row is None else RequestRow(*row)

    def claim_request(self, merchant_id: bytes, ts_m: int) -> bool:
        """open → pending, atomically: False when the request was already used (a replay)."""
        cursor = self.db.execute("UPDATE merchant_requests SET state = 'pending' WHERE merchant_id = ? AND ts_m = ? "
                                 "AND state = 'open'", (merchant_id, ts_m))
        return cursor.rowcount == 1

    def close_request(self, merchant_id: bytes, ts_m: int, state: str, reason: str) -> None:
        self.db.execute("UPDATE merchant_requests SET state = ?, reason = ? WHERE merchant_id = ? AND ts_m = ?",
                        (state, reason, merchant_id, ts_m))

    _EVIDENCE_COLUMNS = "id, merchant_id, ts_m, iin, amount, sigma, signature, pkc, h_rcard, v_card, auth_code, at"

    def add_evidence(self, sigma: SignedPayment, *, signature: bytes, pkc: bytes, h_rcard: bytes, v_card: bytes,
                     auth_code: str) -> int:
        """An approved payment: σ exactly as signed (``sigma.raw``) with what verifies it."""
        cursor = self.db.execute(
            "INSERT INTO merchant_evidence (merchant_id, ts_m, iin, amount, sigma, signature, pkc, h_rcard, v_card, "
            "auth_code, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sigma.merchant_id, sigma.ts_m, sigma.iin, sigma.amount, sigma.raw, signature, pkc, h_rcard, v_card,
             auth_code, _now()))
        return int(cursor.lastrowid)

    def evidence(self, evidence_id: int) -> EvidenceRow | None:
        row = self.db.execute(f"SELECT {self._EVIDENCE_COLUMNS} FROM merchant_evidence WHERE id = ?",
                              (evidence_id,)).fetchone()
        return None if row is None else EvidenceRow(*row)

    def all_evidence(self, merchant_id: bytes | None = None) -> list[EvidenceRow]:
        where, params = ("WHERE merchant_id = ?", (merchant_id,)) if merchant_id is not None else ("", ())
        rows = self.db.execute(f"SELECT {self._EVIDENCE_COLUMNS} FROM merchant_evidence {where} ORDER BY id", params)
        return [EvidenceRow(*row) for row in rows.fetchall()]
