"""The SCMS database on SQLite and on a real PostgreSQL server: a request claimed by one claimant only
(two threads racing, as two serve processes would), relay sequence numbers accepted once and in order."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cardsuite.scms.db import Database, DatabaseError


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scms.db'}"
        return
    pg = request.getfixturevalue("postgres_url")
    db = Database(pg)
    db.create()
    with db.transaction() as cur:  # the server outlives a test
        for table in ("scms_requests", "scms_cards"):
            cur.execute(f"DELETE FROM {table}")
    db.close()
    yield pg


def test_one_claimant_wins(url: str) -> None:
    db = Database(url)
    db.create()
    request = db.new_request("t", "install", "isoapplet")
    wins: list[str] = []
    barrier = threading.Barrier(8)

    def claim(name: str) -> None:
        own = Database(url)  # a connection each, as separate processes have
        barrier.wait()
        if own.claim_request(request, name):
            wins.append(name)
        own.close()

    threads = [threading.Thread(target=claim, args=(f"server-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    record = db.request(request)
    assert record is not None and record.state == "running" and record.claimed_by == wins[0]


def test_relay_sequence_once_and_in_order(url: str) -> None:
    db = Database(url)
    db.create()
    request = db.new_request("t", "install", "isoapplet")
    assert db.next_relay_seq(request, 1)
    assert not db.next_relay_seq(request, 1)  # replayed
    assert not db.next_relay_seq(request, 3)  # skipped one
    assert db.next_relay_seq(request, 2)
    other = Database(url)  # another server process sees the same count
    assert other.next_relay_seq(request, 3) and not db.next_relay_seq(request, 3)


def test_cards_by_state_is_indexed(url: str) -> None:
    db = Database(url)
    db.create()
    for i in range(5):
        db.upsert_card(f"cplc:{i:04d}", "SECURED" if i % 2 else "OP_READY")
    assert db.cards_by_state() == {"SECURED": 2, "OP_READY": 3}
    if url.startswith("sqlite"):
        plan = " ".join(str(r) for r in db.query("EXPLAIN QUERY PLAN SELECT cin FROM scms_cards WHERE state = ?",
                                                  ("SECURED",)))
        assert "scms_cards_state" in plan


def test_a_bad_url_is_one_clear_error() -> None:
    with pytest.raises(DatabaseError, match="use sqlite:///path or postgresql://"):
        Database("mysql://x/y")


def test_statistics(url: str) -> None:
    db = Database(url)
    db.create()
    db.upsert_card("cplc:0001", "SECURED")
    done = db.new_request("t", "install", "isoapplet")
    db.finish_request(done, "done", "install isoapplet")
    for _ in range(2):
        db.finish_request(db.new_request("t", "install", "wallet-sim"), "failed", "card cplc:9 is blacklisted")
    stats = db.statistics()
    assert stats["cards"] == {"SECURED": 1}
    assert stats["requests"] == {"install done": 1, "install failed": 2}
    assert stats["failures"] == {"card cplc:9 is blacklisted": 2}
