"""The SCMS schema's migrations on SQLite and on a real PostgreSQL server (a database of its own per test): a
database made by the last unversioned schema (commit 6a9082a, its statements in support.scms_schema_6a9082a)
upgraded with its rows and counters kept, one from before the counters counted, the old relay_seq column
dropped, a database newer than the code refused, and several processes starting on one database at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from cardsuite.scms.db import Database, DatabaseError
from cardsuite.scms.schema import MIGRATIONS, SCHEMA_VERSION
from support.scms_schema_6a9082a import make_old_database
from support.threads import at_once

NOW = 1_795_000_000.0  # 2026-11-18 UTC: the old rows' times (one day)
OLD_ROWS = [
    "INSERT INTO scms_users (name, password_hash, role, created_at) VALUES ('admin', 'argon2-hash', "
    f"'administrator', {NOW})",
    f"INSERT INTO scms_terminals (name, token_hash, created_at) VALUES ('kiosk-1', 'sha256', {NOW})",
    *(f"INSERT INTO scms_cards (cin, state, updated_at) VALUES ('cplc:{i:04X}', '{state}', {NOW})"
      for i, state in enumerate(("SECURED", "SECURED", "OP_READY"))),
    "INSERT INTO scms_requests (terminal, action, target, cin, state, reason, created_at, updated_at) VALUES "
    f"('kiosk-1', 'install', 'isoapplet', 'cplc:0000', 'done', 'install isoapplet: 9 steps', {NOW}, {NOW}), "
    f"('kiosk-1', 'install', 'isoapplet', 'cplc:0001', 'failed', 'card cplc:0001 is blacklisted', {NOW}, {NOW}), "
    f"('kiosk-1', 'install', 'isoapplet', 'cplc:0002', 'failed', 'card cplc:0002 is blacklisted', {NOW}, {NOW}), "
    f"('kiosk-1', 'install', 'isoapplet', 'cplc:0002', 'queued', NULL, {NOW}, {NOW})",
    f"INSERT INTO scms_steps (request_id, number, name, outcome, detail, at) VALUES (1, 1, 'request', 'ok', '', {NOW})",
    "INSERT INTO scms_exchanges (request_id, seq, command, response, sw, seconds) VALUES "
    "(1, 1, '00 A4 04 00', '', 36864, 0.01)",
]
TABLES = ("scms_users", "scms_terminals", "scms_cards", "scms_requests", "scms_steps", "scms_exchanges")


def _counts(db: Database) -> dict[str, int]:
    return {table: int(db.query(f"SELECT COUNT(*) FROM {table}")[0][0]) for table in TABLES}


def test_a_database_of_the_unversioned_schema_is_upgraded_with_its_rows_and_counters(empty_url: str) -> None:
    make_old_database(empty_url, OLD_ROWS)
    db = Database(empty_url)
    assert db.schema_version() == 0
    assert db.create() == SCHEMA_VERSION
    assert db.schema_version() == SCHEMA_VERSION
    assert [v for (v,) in db.query("SELECT version FROM scms_schema ORDER BY version")] == [
        m.version for m in MIGRATIONS]
    assert _counts(db) == {"scms_users": 1, "scms_terminals": 1, "scms_cards": 3, "scms_requests": 4,
                           "scms_steps": 1, "scms_exchanges": 1}
    stats = db.statistics()
    assert stats["cards"] == {"OP_READY": 1, "SECURED": 2}
    assert stats["requests"] == {"install done": 1, "install failed": 2, "install queued": 1}
    # the old failures, counted once per card by their sentences, are one kind now (migration 4)
    assert stats["failures"] == {"blacklisted card": 2}
    assert db.query("SELECT reason_kind, reason FROM scms_requests WHERE state = 'failed' ORDER BY id") == [
        ("blacklisted card", "card cplc:0001 is blacklisted"), ("blacklisted card", "card cplc:0002 is blacklisted")]
    # the ids go on from the old rows' (the serial's sequence kept), and the triggers still count
    request = db.new_request("kiosk-1", "install", "isoapplet")
    assert request == 5
    db.finish_request(request, "done", "install isoapplet: 9 steps")
    assert db.statistics()["requests"]["install done"] == 2
    assert db.create() == SCHEMA_VERSION  # again: nothing to do
    assert db.query("SELECT COUNT(*) FROM scms_schema")[0][0] == len(MIGRATIONS)


def test_a_database_made_before_the_counters_is_counted(empty_url: str) -> None:
    make_old_database(empty_url, OLD_ROWS, counters=False)
    db = Database(empty_url)
    db.create()
    stats = db.statistics()
    assert stats["cards"] == {"OP_READY": 1, "SECURED": 2}
    assert stats["requests"] == {"install done": 1, "install failed": 2, "install queued": 1}


def test_the_old_relay_seq_column_is_dropped(empty_url: str) -> None:
    """Made before the relay order moved to the link: the unused column goes, the rows stay."""
    db = Database(empty_url)
    serial = db.dialect.serial
    db.execute(f"""CREATE TABLE scms_requests (
        id {serial}, terminal TEXT NOT NULL, action TEXT NOT NULL, target TEXT, cin TEXT,
        state TEXT NOT NULL, reason TEXT, claimed_by TEXT, relay_seq INTEGER NOT NULL DEFAULT 0,
        created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)""")
    db.execute("INSERT INTO scms_requests (terminal, action, state, relay_seq, created_at, updated_at) "
               f"VALUES ('t', 'install', 'done', 7, {NOW}, {NOW})")
    db.create()
    columns = [d[0] for d in _description(db, "SELECT * FROM scms_requests")]
    assert "relay_seq" not in columns and "terminal" in columns
    assert db.statistics()["requests"] == {"install done": 1}
    request = db.new_request("t", "install", "isoapplet")
    assert db.claim_request(request, "server-1")


def _description(db: Database, sql: str) -> list[tuple]:
    cursor = db._db.cursor()
    cursor.execute(sql)
    cursor.fetchall()
    return list(cursor.description)


def test_a_database_newer_than_the_code_is_refused(empty_url: str) -> None:
    db = Database(empty_url)
    db.create()
    db.execute("INSERT INTO scms_schema (version, summary, applied_at) VALUES (?, 'from the future', 0)",
               (SCHEMA_VERSION + 1,))
    with pytest.raises(DatabaseError) as refused:
        Database(empty_url).create()
    message = str(refused.value)
    assert message.splitlines() == [message]
    assert f"schema version {SCHEMA_VERSION + 1}, newer than this cardsuite's {SCHEMA_VERSION}" in message


def test_an_sqlite_file_is_switched_to_wal_while_another_process_writes_it(tmp_path: Path) -> None:
    """Switching a rollback-journal file to WAL while another connection holds its write lock: SQLite says
    "database is locked" at once there, without waiting (two `serve`s starting on an old file); the opening
    waits for the writer instead, and the file ends in WAL."""
    path = tmp_path / "old.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE t (a)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    threading.Timer(0.3, writer.execute, ("COMMIT",)).start()
    db = Database(f"sqlite:///{path}")
    assert db.query("PRAGMA journal_mode") == [("wal",)] and db.query("SELECT a FROM t") == [(1,)]
    db.close()
    writer.close()


def _start(url: str, barrier: Any, results: Any) -> None:
    barrier.wait()  # opened at once too: the first opening switches an old SQLite file to WAL
    try:
        db = Database(url)
        results.put(("ok", db.create()))
        db.close()
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def test_servers_starting_at_once_migrate_once(empty_url: str) -> None:
    """Four processes (as four `serve`s) upgrading one old database at once: each ends at SCHEMA_VERSION,
    every migration is recorded once, and the counters are counted once (not once per process)."""
    make_old_database(empty_url, OLD_ROWS, counters=False)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    processes = [context.Process(target=_start, args=(empty_url, barrier, results)) for _ in range(4)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
    assert outcomes == [("ok", SCHEMA_VERSION)] * 4
    db = Database(empty_url)
    assert [v for (v,) in db.query("SELECT version FROM scms_schema ORDER BY version")] == [
        m.version for m in MIGRATIONS]
    assert db.statistics()["cards"] == {"OP_READY": 1, "SECURED": 2}
    assert db.statistics()["requests"] == {"install done": 1, "install failed": 2, "install queued": 1}


def test_threads_starting_on_a_new_database_at_once(empty_url: str) -> None:
    """Eight connections making a new database at once (CREATE TABLE IF NOT EXISTS races on PostgreSQL
    without the lock): none fails."""
    barrier, errors = threading.Barrier(8), []

    def start() -> None:
        db = Database(empty_url)
        barrier.wait()
        try:
            db.create()
        except DatabaseError as exc:
            errors.append(str(exc))
        db.close()

    at_once(start, (() for _ in range(8)))
    assert not errors
    assert Database(empty_url).schema_version() == SCHEMA_VERSION
