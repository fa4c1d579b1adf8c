"""Where the issuer's keys come from, and the database file: no silent fallback to development keys,
no secret on the command line or in a repr, per-card keys diversified, a database bound to its
issuer's master secret, a versioned schema, transactions that roll back."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from cardsuite.errors import ConfigurationError
from cardsuite.settings import ENV_ISSUER_KEY_FILE, ENV_ISSUER_SECRET, ENV_TRANSPORT_KEYS
from cardsuite.wallet.cardnumber import CardNumber
from cardsuite.wallet.issuer import (
    Issuer,
    IssuerSecret,
    load_transport_keys,
)
from cardsuite.wallet.store import SCHEMA_VERSION, WalletStore, WalletStoreError

HEX_SECRET = "0f" * 32


def test_no_secret_configured_is_an_error_not_the_development_key() -> None:
    with pytest.raises(ConfigurationError, match="no issuer master secret.*--dev-keys"):
        IssuerSecret.load(environ={})


def test_the_development_secret_only_when_asked_and_never_beside_a_real_one() -> None:
    assert IssuerSecret.load(environ={}, dev=True).is_development
    with pytest.raises(ConfigurationError, match="both given"):
        IssuerSecret.load(environ={ENV_ISSUER_SECRET: HEX_SECRET}, dev=True)


def test_secret_from_the_environment_or_a_private_key_file(tmp_path) -> None:
    from_env = IssuerSecret.load(environ={ENV_ISSUER_SECRET: HEX_SECRET})
    key_file = tmp_path / "issuer.key"
    key_file.write_text(HEX_SECRET + "\n")
    key_file.chmod(0o600)
    from_file = IssuerSecret.load(environ={ENV_ISSUER_KEY_FILE: str(key_file)})
    assert from_env.check_value == from_file.check_value and not from_env.is_development
    key_file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        IssuerSecret.load(environ={}, key_file=key_file)
    with pytest.raises(ConfigurationError, match="at least 32"):
        IssuerSecret.load(environ={ENV_ISSUER_SECRET: "00" * 16})
    with pytest.raises(ConfigurationError, match="not hex"):
        IssuerSecret.load(environ={ENV_ISSUER_SECRET: "zz" * 32})


def test_the_secret_never_shows_in_a_repr() -> None:
    secret = IssuerSecret(bytes.fromhex(HEX_SECRET), "test")
    keys = secret.card_keys(bytes(32))
    assert HEX_SECRET not in repr(secret).lower() and keys.enc.hex() not in repr(keys)


def test_card_keys_are_diversified_per_card_and_per_secret() -> None:
    secret = IssuerSecret(bytes.fromhex(HEX_SECRET), "test")
    first, second = CardNumber.generate("940001"), CardNumber.generate("940001")
    a, b = secret.card_keys(secret.number_hash(first)), secret.card_keys(secret.number_hash(second))
    assert a.enc != b.enc
    assert a.mac != b.mac
    assert a.enc != a.mac
    assert secret.card_keys(secret.number_hash(first)) == a  # deterministic: nothing to store
    other = IssuerSecret(bytes(32), "other")
    assert other.number_hash(first) != secret.number_hash(first)


def test_transport_keys_from_the_environment_or_explicitly_the_development_ones(project) -> None:
    with pytest.raises(ConfigurationError, match=ENV_TRANSPORT_KEYS):
        load_transport_keys(project.manifest, environ={})
    keys = load_transport_keys(project.manifest, environ={ENV_TRANSPORT_KEYS: "11" * 32})
    assert keys.enc == bytes([0x11]) * 16
    assert load_transport_keys(project.manifest, environ={}, dev=True).enc == bytes(range(0x40, 0x50))
    with pytest.raises(ConfigurationError, match=ENV_TRANSPORT_KEYS):
        load_transport_keys(project.manifest, environ={ENV_TRANSPORT_KEYS: "11" * 31})


def test_a_database_belongs_to_one_master_secret(tmp_path) -> None:
    path = tmp_path / "issuer.db"
    with WalletStore(path) as registry:
        Issuer(registry, IssuerSecret(bytes.fromhex(HEX_SECRET), "first"))
    with WalletStore(path) as registry:
        Issuer(registry, IssuerSecret(bytes.fromhex(HEX_SECRET), "again"))  # the same secret: fine
        with pytest.raises(ConfigurationError, match="another master secret"):
            Issuer(registry, IssuerSecret.development())


def test_schema_created_once_and_versioned(tmp_path) -> None:
    path = tmp_path / "w.db"
    with WalletStore(path) as registry:
        assert registry.schema_version == SCHEMA_VERSION
        account = registry.add_account("Lee")
    with WalletStore(path) as registry:  # opened again: nothing re-created, the data is there
        assert registry.account(account).holder == "Lee"  # type: ignore[union-attr]
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(WalletStoreError, match="upgrade cardsuite"):
        WalletStore(path)


def test_an_old_file_is_switched_to_wal_while_another_process_writes_it(tmp_path) -> None:
    """A rollback-journal file (the SCMS's serve processes share one wallet database) opened while another
    connection holds its write lock: SQLite refuses the switch to WAL at once, without its busy wait; the
    opening waits for the writer instead (it was refused as "not a usable cardsuite database")."""
    path = tmp_path / "w.db"
    WalletStore(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA journal_mode = DELETE")
    raw.close()
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE scratch (a)")
    threading.Timer(0.3, writer.execute, ("ROLLBACK",)).start()
    with WalletStore(path) as registry:
        assert registry.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert registry.schema_version == SCHEMA_VERSION
    writer.close()


def test_foreign_files_are_refused(tmp_path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as raw:
        raw.execute("CREATE TABLE t (x)")
    with pytest.raises(WalletStoreError, match="not a cardsuite database"):
        WalletStore(other)
    text = tmp_path / "notes.txt"
    text.write_text("this is not SQLite at all, just some text that is long enough to have a header" * 10)
    with pytest.raises(WalletStoreError, match="not a usable cardsuite database"):
        WalletStore(text)


def test_a_failed_transaction_leaves_nothing(tmp_path) -> None:
    with WalletStore(tmp_path / "w.db") as registry:
        with pytest.raises(RuntimeError), registry.transaction():
            registry.add_account("Half")
            with registry.transaction():  # nested: a savepoint
                registry.add_account("Half too")
            raise RuntimeError("card removed")
        assert registry.accounts() == []
        with registry.transaction():
            registry.add_account("Whole")
            with pytest.raises(ValueError), registry.transaction():
                registry.add_account("Inner only")
                raise ValueError("inner")
        assert [a.holder for a in registry.accounts()] == ["Whole"]
