"""The e-cash roles of [P004] (CA, broker, vendor, and the customer's own records), on SQLite.

The tables live in the wallet roles' database file (``store.WalletStore``: same file, its transactions,
its schema check first); ours are prefixed ``ecash_``, created on first use, and versioned by the meta key
``ecash_schema``. Each role reads and writes only its own tables, which is what limited traceability
rests on: the CA's tables link identity and PID and hold no token; the broker's tables hold PIDs and
tokens and no identity. ``trace`` needs both.

Keys are kept as PEM in ``ecash_keys`` (one row per role and name), so that separate CLI processes
share them: a development arrangement, each party would keep its own key elsewhere in production.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from cardsuite.ecash.primitives import (
    MAX_UNITS_PER_PAYMENT,
    PID_LENGTH,
    UNITS,
    CaCertificate,
    EcashError,
    RangeBody,
    RangeCertificate,
    Token,
    certify_token,
    chain_forward,
    chain_root,
    ecdh_x,
    encode_point,
    load_private,
    new_private_key,
    payword,
    private_pem,
    sign,
    token_key,
    vendor_id,
)
from cardsuite.wallet.store import WalletStore

ECASH_SCHEMA = 1

_TABLES = """
CREATE TABLE IF NOT EXISTS ecash_keys (
    role TEXT NOT NULL, name TEXT NOT NULL, private_pem BLOB NOT NULL, PRIMARY KEY (role, name));
CREATE TABLE IF NOT EXISTS ecash_ca_customers (
    pid BLOB PRIMARY KEY, identity TEXT NOT NULL, public_value BLOB NOT NULL UNIQUE,
    certificate BLOB NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ecash_broker_accounts (
    pid BLOB PRIMARY KEY, public_value BLOB NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ecash_broker_ranges (
    sn INTEGER PRIMARY KEY, pid BLOB NOT NULL REFERENCES ecash_broker_accounts (pid),
    n1 INTEGER NOT NULL, n10 INTEGER NOT NULL, n100 INTEGER NOT NULL, n1000 INTEGER NOT NULL,
    n10000 INTEGER NOT NULL, prepaid INTEGER NOT NULL, certificate BLOB NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ecash_broker_vendors (
    vendor_id BLOB PRIMARY KEY, name TEXT NOT NULL, paid INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS ecash_broker_chains (
    pid BLOB NOT NULL, vendor_id BLOB NOT NULL, unit INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (pid, vendor_id, unit));
CREATE TABLE IF NOT EXISTS ecash_broker_deposits (
    id INTEGER PRIMARY KEY, vendor_id BLOB NOT NULL, pid BLOB NOT NULL, token BLOB NOT NULL,
    paid INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ecash_broker_reports (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('forged', 'double-spending', 'replay',
    'wrong-vendor', 'unknown-pid')), pid BLOB, vendor_id BLOB NOT NULL, token BLOB NOT NULL,
    detail TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ecash_vendor_chains (
    vendor TEXT NOT NULL, pid BLOB NOT NULL, unit INTEGER NOT NULL, count INTEGER NOT NULL,
    state BLOB NOT NULL, PRIMARY KEY (vendor, pid, unit));
CREATE TABLE IF NOT EXISTS ecash_vendor_tokens (
    id INTEGER PRIMARY KEY, vendor TEXT NOT NULL, pid BLOB NOT NULL, amount INTEGER NOT NULL,
    token BLOB NOT NULL, state TEXT NOT NULL CHECK (state IN ('accepted', 'deposited', 'refused')),
    detail TEXT, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ecash_customer_certs (
    pid BLOB PRIMARY KEY, ca_certificate BLOB NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ecash_customer_ranges (
    sn INTEGER PRIMARY KEY, pid BLOB NOT NULL, certificate BLOB NOT NULL, at REAL NOT NULL)
"""


def _now() -> float:
    return time.time()


class EcashStore:
    """Our tables in a registry file. ``with store.transaction():`` around every change."""

    def __init__(self, registry: WalletStore) -> None:
        self.registry = registry
        self.db = registry.db
        current = registry.meta("ecash_schema")
        if current is not None and int(current) > ECASH_SCHEMA:
            raise EcashError(f"{registry.path}: e-cash tables of version {current}; this cardsuite knows "
                             f"{ECASH_SCHEMA}: upgrade cardsuite")
        if current is None:
            with registry.transaction():
                for statement in _TABLES.split(";"):
                    self.db.execute(statement)
                registry.set_meta("ecash_schema", str(ECASH_SCHEMA))

    @classmethod
    def open(cls, path: Path | str) -> EcashStore:
        return cls(WalletStore(path))

    def close(self) -> None:
        self.registry.close()

    def transaction(self):
        return self.registry.transaction()

    def key(self, role: str, name: str = ""):
        """The role's private key, made on first use."""
        row = self.db.execute("SELECT private_pem FROM ecash_keys WHERE role = ? AND name = ?",
                              (role, name)).fetchone()
        if row is not None:
            return load_private(row[0])
        key = new_private_key()
        with self.transaction():
            self.db.execute("INSERT INTO ecash_keys (role, name, private_pem) VALUES (?, ?, ?)",
                            (role, name, private_pem(key)))
        return key


# ---------------------------------------------------------------- CA


class CertificateAuthority:
    """Registers identities, hands out pseudonyms, certifies S_CA(PID ‖ g^c). The only holder of
    identity ↔ PID."""

    def __init__(self, store: EcashStore) -> None:
        self.store = store
        self._key = store.key("ca")
        self.public_point = encode_point(self._key.public_key())

    def register(self, identity: str, public_value: bytes) -> CaCertificate:
        if not identity.strip():
            raise EcashError("the CA registers a named identity")
        known = self.store.db.execute("SELECT certificate FROM ecash_ca_customers WHERE public_value = ?",
                                      (public_value,)).fetchone()
        if known is not None:
            raise EcashError("this public value is registered already")
        pid = os.urandom(PID_LENGTH)  # random: a PID says nothing about the identity
        cert = CaCertificate(pid, public_value, sign(self._key, pid + public_value))
        with self.store.transaction() as db:
            db.execute("INSERT INTO ecash_ca_customers (pid, identity, public_value, certificate, at) "
                       "VALUES (?, ?, ?, ?, ?)", (pid, identity, public_value, cert.encode(), _now()))
        return cert

    def identity(self, pid: bytes) -> str:
        row = self.store.db.execute("SELECT identity FROM ecash_ca_customers WHERE pid = ?", (pid,)).fetchone()
        if row is None:
            raise EcashError(f"PID {pid.hex()} is unknown to this CA")
        return str(row[0])


# ---------------------------------------------------------------- broker


@dataclass(frozen=True)
class DepositResult:
    token: Token
    paid: int
    refused: str | None = None  # the report kind when the token is refused
    detail: str = ""
    report_id: int | None = None

    @property
    def accepted(self) -> bool:
        return self.refused is None


class Broker:
    """Sells range certificates against prepayment, derives each customer's token key, and at deposit
    checks token certificates and that the count of every unit per PID, over all vendors, stays in the
    certified ranges."""

    def __init__(self, store: EcashStore, ca_point: bytes) -> None:
        self.store = store
        self.ca_point = ca_point
        self._sig = store.key("broker-signature")
        self._dh = store.key("broker-dh")
        self.signature_point = encode_point(self._sig.public_key())
        self.dh_point = encode_point(self._dh.public_key())

    def open_account(self, ca_cert: CaCertificate) -> None:
        if not ca_cert.verify(self.ca_point):
            raise EcashError("the CA certificate does not verify")
        with self.store.transaction() as db:
            db.execute("INSERT OR IGNORE INTO ecash_broker_accounts (pid, public_value, at) VALUES (?, ?, ?)",
                       (ca_cert.pid, ca_cert.public_value, _now()))

    def buy(self, ca_cert: CaCertificate, counts: tuple[int, ...]) -> RangeCertificate:
        """Takes the prepayment of value(counts) (the payment itself is outside this model) and answers
        S_B(counts ‖ PID ‖ SN). SNs rise with every certificate, so a card keeps only the last one."""
        if len(counts) != len(UNITS) or min(counts) < 0 or not any(counts):
            raise EcashError("a range names a count ≥ 0 for each of the five units, not all 0")
        self.open_account(ca_cert)
        with self.store.transaction() as db:
            sn = int(db.execute("SELECT coalesce(max(sn), 0) + 1 FROM ecash_broker_ranges").fetchone()[0])
            body = RangeBody(tuple(counts), ca_cert.pid, sn)
            cert = RangeCertificate(body, sign(self._sig, body.encode()))
            db.execute("INSERT INTO ecash_broker_ranges (sn, pid, n1, n10, n100, n1000, n10000, prepaid, "
                       "certificate, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (sn, ca_cert.pid, *counts, body.value, cert.encode(), _now()))
        return cert

    def limits(self, pid: bytes) -> tuple[int, ...]:
        row = self.store.db.execute("SELECT coalesce(sum(n1), 0), coalesce(sum(n10), 0), coalesce(sum(n100), 0), "
                                    "coalesce(sum(n1000), 0), coalesce(sum(n10000), 0) FROM ecash_broker_ranges "
                                    "WHERE pid = ?", (pid,)).fetchone()
        return tuple(int(n) for n in row)

    def spent(self, pid: bytes) -> tuple[int, ...]:
        """Per unit, the counts deposited so far summed over vendors (each vendor's chain is cumulative)."""
        rows = self.store.db.execute("SELECT unit, sum(count) FROM ecash_broker_chains WHERE pid = ? GROUP BY unit",
                                     (pid,)).fetchall()
        totals = dict(rows)
        return tuple(int(totals.get(e, 0)) for e in range(len(UNITS)))

    def _token_key(self, pid: bytes) -> bytes | None:
        row = self.store.db.execute("SELECT public_value FROM ecash_broker_accounts WHERE pid = ?", (pid,)).fetchone()
        return None if row is None else token_key(ecdh_x(self._dh, row[0]))

    def deposit(self, vendor_name: str, vendor_point: bytes, token: Token) -> DepositResult:
        """One token: pays the vendor for the units its counts move forward, or refuses and reports."""
        vid = vendor_id(vendor_point)
        with self.store.transaction() as db:
            db.execute("INSERT OR IGNORE INTO ecash_broker_vendors (vendor_id, name) VALUES (?, ?)", (vid, vendor_name))
            result = self._check(db, vid, token)
            if result.accepted:
                for row in token.rows:
                    db.execute("INSERT INTO ecash_broker_chains (pid, vendor_id, unit, count) VALUES (?, ?, ?, ?) "
                               "ON CONFLICT (pid, vendor_id, unit) DO UPDATE SET count = excluded.count",
                               (token.pid, vid, row.unit, row.count))
                db.execute("INSERT INTO ecash_broker_deposits (vendor_id, pid, token, paid, at) VALUES (?, ?, ?, ?, ?)",
                           (vid, token.pid, token.encode(), result.paid, _now()))
                db.execute("UPDATE ecash_broker_vendors SET paid = paid + ? WHERE vendor_id = ?", (result.paid, vid))
                return result
            cursor = db.execute("INSERT INTO ecash_broker_reports (kind, pid, vendor_id, token, detail, at) "
                                "VALUES (?, ?, ?, ?, ?, ?)",
                                (result.refused, token.pid, vid, token.encode(), result.detail, _now()))
            return DepositResult(token, 0, result.refused, result.detail, int(cursor.lastrowid))

    def _check(self, db, vid: bytes, token: Token) -> DepositResult:
        def refuse(kind: str, detail: str) -> DepositResult:
            return DepositResult(token, 0, kind, detail)

        if token.vendor_id != vid:
            return refuse("wrong-vendor", "the token names another vendor")
        key = self._token_key(token.pid)
        if key is None:
            return refuse("unknown-pid", "no range was ever sold to this PID")
        if certify_token(key, token.body) != token.cert:
            return refuse("forged", "the token certificate does not verify: not made with the customer's token key")
        limits = self.limits(token.pid)
        spent = list(self.spent(token.pid))
        paid = 0
        for row in token.rows:
            before = db.execute("SELECT count FROM ecash_broker_chains WHERE pid = ? AND vendor_id = ? AND unit = ?",
                                (token.pid, vid, row.unit)).fetchone()
            previous = 0 if before is None else int(before[0])
            if row.count <= previous:
                return refuse("replay", f"unit {UNITS[row.unit]}: count {row.count} deposited already "
                                        f"(this vendor's chain is at {previous})")
            spent[row.unit] += row.count - previous
            if spent[row.unit] > limits[row.unit]:
                return refuse("double-spending", f"unit {UNITS[row.unit]}: {spent[row.unit]} spent over all "
                                                 f"vendors, {limits[row.unit]} certified")
            paid += (row.count - previous) * UNITS[row.unit]
        return DepositResult(token, paid)

    def report(self, report_id: int) -> tuple[str, bytes, str]:
        row = self.store.db.execute("SELECT kind, pid, detail FROM ecash_broker_reports WHERE id = ?",
                                    (report_id,)).fetchone()
        if row is None:
            raise EcashError(f"no report {report_id} in the broker's records")
        return str(row[0]), bytes(row[1]), str(row[2])

    def reports(self) -> list[tuple[int, str, bytes, str]]:
        rows = self.store.db.execute("SELECT id, kind, pid, detail FROM ecash_broker_reports ORDER BY id")
        return [(int(i), str(k), bytes(p), str(d)) for i, k, p, d in rows.fetchall()]

    def vendor_paid(self, vendor_point: bytes) -> int:
        row = self.store.db.execute("SELECT paid FROM ecash_broker_vendors WHERE vendor_id = ?",
                                    (vendor_id(vendor_point),)).fetchone()
        return 0 if row is None else int(row[0])


def trace(broker: Broker, ca: CertificateAuthority, report_id: int) -> str:
    """Limited traceability: the broker's report names a PID, only the CA maps it to an identity."""
    _, pid, _ = broker.report(report_id)
    return ca.identity(pid)


# ---------------------------------------------------------------- vendor


@dataclass(frozen=True)
class TokenReceipt:
    token_id: int
    amount: int


class Vendor:
    """Checks the CA and range certificates, computes each chain root with its own secret v, verifies the
    paywords by hashing forward from the last count it accepted, and keeps the tokens for deposit."""

    def __init__(self, store: EcashStore, name: str, ca_point: bytes, broker_point: bytes) -> None:
        self.store = store
        self.name = name
        self.ca_point = ca_point
        self.broker_point = broker_point
        self._key = store.key("vendor", name)
        self.public_point = encode_point(self._key.public_key())
        self.vendor_id = vendor_id(self.public_point)

    def accept(self, ca_cert: CaCertificate, ranges: list[RangeCertificate], token: Token, price: int,
               reference: bytes) -> TokenReceipt:
        """Verifies a payment of ``price`` for the order ``reference``; raises EcashError saying why not."""
        if not ca_cert.verify(self.ca_point):
            raise EcashError("the CA certificate does not verify")
        limits = [0] * len(UNITS)
        seen: set[int] = set()
        for cert in ranges:
            if not cert.verify(self.broker_point):
                raise EcashError(f"range certificate SN {cert.body.sn} does not verify")
            if cert.body.pid != ca_cert.pid or cert.body.sn in seen:
                raise EcashError(f"range certificate SN {cert.body.sn} is not this customer's, or repeated")
            seen.add(cert.body.sn)
            limits = [a + b for a, b in zip(limits, cert.body.counts, strict=True)]
        if token.pid != ca_cert.pid:
            raise EcashError("the token is for another PID than the CA certificate")
        if token.vendor_id != self.vendor_id:
            raise EcashError("the token is for another vendor")
        if token.reference != reference or token.amount != price:
            raise EcashError(f"the token pays {token.amount} for another order, not {price} for this one")
        units = [row.unit for row in token.rows]
        if len(set(units)) != len(units) or any(not 0 <= e < len(UNITS) for e in units):
            raise EcashError("the token repeats a unit or names an unknown one")
        x = None
        updates = []
        value = 0
        for row in token.rows:
            stored = self.store.db.execute("SELECT count, state FROM ecash_vendor_chains WHERE vendor = ? AND pid = ? "
                                           "AND unit = ?", (self.name, token.pid, row.unit)).fetchone()
            if stored is None:
                x = x if x is not None else ecdh_x(self._key, ca_cert.public_value)
                previous, state = 0, chain_root(x, row.unit)
            else:
                previous, state = int(stored[0]), bytes(stored[1])
            if row.count <= previous:
                raise EcashError(f"unit {UNITS[row.unit]}: count {row.count} does not move forward from {previous} "
                                 "(a replayed token)")
            if row.count > limits[row.unit]:
                raise EcashError(f"unit {UNITS[row.unit]}: count {row.count} is past the certified range "
                                 f"{limits[row.unit]}")
            if row.count - previous > MAX_UNITS_PER_PAYMENT:
                raise EcashError(f"unit {UNITS[row.unit]}: more than {MAX_UNITS_PER_PAYMENT} units in one payment")
            state = chain_forward(state, row.count - previous)
            if payword(state) != row.payword:
                raise EcashError(f"unit {UNITS[row.unit]}: the payword for count {row.count} does not hash to the "
                                 "root shared with this customer")
            updates.append((row.unit, row.count, state))
            value += (row.count - previous) * UNITS[row.unit]
        if value != price:
            raise EcashError(f"the counts move forward by {value}, the price is {price}")
        with self.store.transaction() as db:
            for unit, count, state in updates:
                db.execute("INSERT INTO ecash_vendor_chains (vendor, pid, unit, count, state) VALUES (?, ?, ?, ?, ?) "
                           "ON CONFLICT (vendor, pid, unit) DO UPDATE SET count = excluded.count, "
                           "state = excluded.state", (self.name, token.pid, unit, count, state))
            cursor = db.execute("INSERT INTO ecash_vendor_tokens (vendor, pid, amount, token, state, at) "
                                "VALUES (?, ?, ?, ?, 'accepted', ?)",
                                (self.name, token.pid, price, token.encode(), _now()))
        return TokenReceipt(int(cursor.lastrowid), price)

    def keep(self, token: Token, amount: int) -> int:
        """Stores a token as accepted without checks: what a cheating vendor does (tests)."""
        with self.store.transaction() as db:
            cursor = db.execute("INSERT INTO ecash_vendor_tokens (vendor, pid, amount, token, state, at) "
                                "VALUES (?, ?, ?, ?, 'accepted', ?)", (self.name, token.pid, amount, token.encode(),
                                                                       _now()))
        return int(cursor.lastrowid)

    def pending(self) -> list[tuple[int, Token]]:
        rows = self.store.db.execute("SELECT id, token FROM ecash_vendor_tokens WHERE vendor = ? AND state = "
                                     "'accepted' ORDER BY id", (self.name,)).fetchall()
        return [(int(i), Token.parse(bytes(t))) for i, t in rows]

    def deposit(self, broker: Broker) -> list[DepositResult]:
        """Hands every accepted token to the broker, oldest first."""
        results = []
        for token_id, token in self.pending():
            result = broker.deposit(self.name, self.public_point, token)
            with self.store.transaction() as db:
                db.execute("UPDATE ecash_vendor_tokens SET state = ?, detail = ? WHERE id = ?",
                           ("deposited" if result.accepted else "refused",
                            f"paid {result.paid}" if result.accepted else f"{result.refused}: {result.detail}",
                            token_id))
            results.append(result)
        return results


# ---------------------------------------------------------------- the customer's own records


class CustomerRecords:
    """What the cardholder's software keeps to present to vendors: its CA certificate and its ranges."""

    def __init__(self, store: EcashStore) -> None:
        self.store = store

    def save_ca_certificate(self, cert: CaCertificate) -> None:
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO ecash_customer_certs (pid, ca_certificate, at) VALUES (?, ?, ?)",
                       (cert.pid, cert.encode(), _now()))

    def ca_certificate(self, pid: bytes | None = None) -> CaCertificate:
        if pid is None:
            row = self.store.db.execute("SELECT ca_certificate FROM ecash_customer_certs ORDER BY at DESC").fetchone()
        else:
            row = self.store.db.execute("SELECT ca_certificate FROM ecash_customer_certs WHERE pid = ?",
                                        (pid,)).fetchone()
        if row is None:
            raise EcashError("no CA certificate on record: run `cardsuite ecash register` first")
        return CaCertificate.parse(bytes(row[0]))

    def save_range(self, cert: RangeCertificate) -> None:
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO ecash_customer_ranges (sn, pid, certificate, at) VALUES (?, ?, ?, ?)",
                       (cert.body.sn, cert.body.pid, cert.encode(), _now()))

    def ranges(self, pid: bytes) -> list[RangeCertificate]:
        rows = self.store.db.execute("SELECT certificate FROM ecash_customer_ranges WHERE pid = ? ORDER BY sn",
                                     (pid,)).fetchall()
        return [RangeCertificate.parse(bytes(r[0])) for r in rows]
