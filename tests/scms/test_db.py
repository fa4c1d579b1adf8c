"""The SCMS database on SQLite and on a real PostgreSQL server: a request claimed by one claimant only
(two threads racing, as two serve processes would), a step written with its exchanges and key uses or not at
all, and the statistics' counters equal to a count of the rows after every kind of change."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cardsuite.deploy.inventory import Inventory
from cardsuite.scms.db import LEASE_SECONDS, Database, DatabaseError, Lease
from cardsuite.scms.pool import Pool
from support.threads import at_once


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scms.db'}"
        return
    pg = request.getfixturevalue("postgres_url")
    db = Database(pg)
    db.create()
    with db.transaction() as cur:  # the server outlives a test
        for table in ("scms_requests", "scms_cards"):  # the counters follow (their triggers)
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

    at_once(claim, ((f"server-{i}",) for i in range(8)))
    assert len(wins) == 1
    record = db.request(request)
    assert record is not None and record.state == "running" and record.claimed_by == wins[0]
    # a server's request of its own terminal link: made running, claimed by it, nobody else's to claim
    own = db.new_request("t", "install", "isoapplet", "server-9")
    record = db.request(own)
    assert record is not None and (record.state, record.claimed_by) == ("running", "server-9")
    assert not db.claim_request(own, "server-1")
    assert db.statistics()["requests"] == {"install running": 2}


def test_a_step_is_written_with_its_exchanges_and_key_uses_or_not_at_all(url: str) -> None:
    db = Database(url)
    db.create()
    request = db.new_request("t", "install", "isoapplet")
    exchanges = [(1, "80 50 00 00 [8 bytes masked: INITIALIZE UPDATE]", "[29 bytes masked: INITIALIZE UPDATE]",
                  0x9000, 0.01), (2, "84 82 33 00 [16 bytes masked: EXTERNAL AUTHENTICATE]", "", 0x9000, 0.01)]
    audit = [(time.time(), f"ads:{request}", "derive", "card-master", request, "session keys")]
    db.record_step(request, 1, "mutual authentication", "ok", exchanges=exchanges, audit=audit)
    assert db.steps(request) == [(1, "mutual authentication", "ok", "")]
    assert db.exchanges(request) == [row[:4] for row in exchanges]
    assert db.query("SELECT operation, key_label FROM scms_audit WHERE request_id = ?", (request,)) == [
        ("derive", "card-master")]
    broken = [(3, None, "", 0x9000, 0.01)]  # a command must be recorded: the whole step is refused
    with pytest.raises(DatabaseError):
        db.record_step(request, 2, "card script", "ok", exchanges=broken, audit=audit)  # type: ignore[arg-type]
    assert len(db.steps(request)) == 1 and len(db.exchanges(request)) == 2
    assert db.query("SELECT COUNT(*) FROM scms_audit WHERE request_id = ?", (request,))[0][0] == 1
    assert db.idle()  # the failed batch rolled back: the connection is fit for the next step
    db.record_step(request, 2, "card script", "ok", exchanges=[(3, "80 F2", "90 00", 0x9000, 0.01)])
    assert len(db.steps(request)) == 2 and len(db.exchanges(request)) == 3


def test_a_transaction_inside_another_is_part_of_it(url: str) -> None:
    """The ADS writes a request's last step and its end in one transaction: both, or neither."""
    db = Database(url)
    db.create()
    request = db.new_request("t", "install", "isoapplet")
    with pytest.raises(DatabaseError), db.transaction():
        db.record_step(request, 1, "record", "ok", "install isoapplet")
        db.finish_request(request, "done", "install isoapplet")
        db.record_step(request, 2, "record", "ok", exchanges=[(1, None, "", 0x9000, 0.0)])  # type: ignore[list-item]
    assert db.steps(request) == [] and db.request(request).state == "queued"  # type: ignore[union-attr]
    assert db.idle()
    with db.transaction():
        db.record_step(request, 1, "record", "ok", "install isoapplet")
        assert not db.idle()  # not committed yet: the outer block's end commits
        db.finish_request(request, "done", "install isoapplet")
    assert db.steps(request) == [(1, "record", "ok", "install isoapplet")]
    assert db.request(request).state == "done"  # type: ignore[union-attr]


def test_a_statement_alone_goes_alone_and_a_bad_one_is_one_clear_error(url: str, tmp_path: Path) -> None:
    """Outside a transaction a query or update is its own (autocommit): no BEGIN or COMMIT around it, which on
    PostgreSQL were two more round trips each; a failing one says so in one line and leaves the connection fit."""
    db = Database(url)
    db.create()
    sent: list[str] = []
    if url.startswith("sqlite"):
        db._db.set_trace_callback(sent.append)  # a statement shown again for each trigger it fires
    else:
        trace = tmp_path / "libpq.trace"
        with trace.open("w") as out:
            db._db.pgconn.trace(out.fileno())
            db.upsert_card("CIN-1", "SECURED")
            assert db.card("CIN-1").state == "SECURED"  # type: ignore[union-attr]
            db._db.pgconn.untrace()
        # libpq's trace: the client's Parse (the statement) and Sync (the end of a round trip) messages
        lines = trace.read_text().splitlines()
        sent = [line for line in lines if "\tF\t" in line and "\tParse\t" in line]
        assert sum("\tF\t" in line and line.endswith("\tSync") for line in lines) == 2
    if url.startswith("sqlite"):
        db.upsert_card("CIN-1", "SECURED")
        assert db.card("CIN-1").state == "SECURED"  # type: ignore[union-attr]
        db._db.set_trace_callback(None)
    assert len(set(sent)) == 2 and not any(word in line for line in sent for word in ("BEGIN", "COMMIT")), sent
    with pytest.raises(DatabaseError, match="^SCMS database error: ") as refused:
        db.query("SELECT nothing FROM scms_cards")
    assert "\n" not in str(refused.value).strip() and db.idle()
    assert db.query("SELECT COUNT(*) FROM scms_cards") == [(1,)]


def test_a_pool_gives_back_idle_connections_and_closes_the_others(url: str, tmp_path: Path) -> None:
    inventory_url = url if url.startswith("postgresql") else f"sqlite:///{tmp_path / 'inventory.db'}"
    for pool in (Pool(lambda: Database(url), keep=1), Pool(lambda: Inventory(inventory_url), keep=1)):
        first = pool.take()
        pool.give(first)
        assert pool.take() is first  # kept, and given again
        second = pool.take()  # none waiting: a new one
        assert second is not first
        with first.transaction():  # in a transaction (as after a failure mid-request): a pool keeps it not
            assert not first.idle()
        assert first.idle()
        first.close()
        pool.give(first)  # closed: not kept
        pool.give(second)
        assert pool.take() is second
        third = pool.take()
        pool.give(second)
        pool.give(third)  # more than ``keep``: closed
        assert not third.idle() and pool.take() is second


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
    assert stats["failures"] == {"blacklisted card": 2}


def test_two_cards_failing_for_one_reason_are_one_counter_row(url: str) -> None:
    """The reason names the card; the counters group by its kind: one row, count 2 (not a row per card)."""
    db = Database(url)
    db.create()
    for cin in ("cplc:4790000000000001", "cplc:4790000000000002"):
        request = db.new_request("t", "install", "isoapplet")
        assert db.claim_request(request, "server-1")
        db.finish_request(request, "failed", f"card {cin} is blacklisted", cin)
    rows = db.query("SELECT reason, n FROM scms_request_counts WHERE state = 'failed' AND n > 0")
    assert rows == [("blacklisted card", 2)]
    assert db.statistics()["failures"] == {"blacklisted card": 2}
    record = db.request(request)  # the request keeps its sentence (the card named) as its detail
    assert record is not None and record.reason == "card cplc:4790000000000002 is blacklisted"


def _counted_from_rows(db: Database) -> dict[str, dict[str, int]]:
    """What the counters must say, counted from the rows themselves (all time)."""
    cards = {state: int(n) for state, n in db.query("SELECT state, COUNT(*) FROM scms_cards GROUP BY state")}
    requests = {f"{a} {s}": int(n) for a, s, n in db.query("SELECT action, state, COUNT(*) FROM scms_requests "
                                                             "GROUP BY action, state")}
    failures = {r or "unknown": int(n) for r, n in db.query("SELECT reason_kind, COUNT(*) FROM scms_requests "
                                                             "WHERE state = 'failed' GROUP BY reason_kind")}
    return {"cards": cards, "requests": requests, "failures": failures}


def test_statistics_counters_follow_every_change(url: str) -> None:
    """Cards and requests through their life cycles, by the Database's methods and by plain SQL (as the
    bench's bulk INSERT and a test's DELETE write): the counters always equal a count of the rows."""
    db = Database(url)
    db.create()
    for i in range(6):
        db.upsert_card(f"cplc:{i:04d}", "OP_READY")
    db.upsert_card("cplc:0001", "SECURED")  # INSERT .. ON CONFLICT DO UPDATE: the update path
    db.upsert_card("cplc:0002", "SECURED")
    db.upsert_card("cplc:0002", "SECURED", profile="p")  # no state change: counted once
    ids = [db.new_request("t", "install", "isoapplet") for _ in range(5)]
    assert db.statistics() == _counted_from_rows(db)
    for i in ids[:4]:
        assert db.claim_request(i, "server-1")
    db.finish_request(ids[0], "done", "install isoapplet: 9 steps done, card SECURED")
    db.finish_request(ids[1], "failed", "card cplc:9 is blacklisted")
    db.finish_request(ids[2], "failed", "card cplc:9 is blacklisted")
    assert db.reap(ids[3], "server-1", "cplc:0003")
    db.execute("UPDATE scms_requests SET target = target || ''")  # not a statistic: no counter moves
    stats = db.statistics()
    assert stats == _counted_from_rows(db)
    assert stats["cards"] == {"OP_READY": 4, "SECURED": 2}
    assert stats["requests"] == {"install done": 1, "install failed": 3, "install queued": 1}
    assert stats["failures"] == {"blacklisted card": 2, "server went away mid-request": 1}
    assert sum(db.done_per_day().values()) == 1
    with db.transaction() as cur:
        cur.execute("UPDATE scms_requests SET updated_at = updated_at - 3 * 86400 WHERE id = ?", (ids[1],))
        cur.execute("DELETE FROM scms_cards WHERE cin = 'cplc:0000'")
        cur.execute("DELETE FROM scms_requests WHERE id = ?", (ids[4],))
    assert db.statistics() == _counted_from_rows(db)
    today = time.time() // 86400 * 86400
    assert db.statistics(since=today)["failures"] == {"blacklisted card": 1, "server went away mid-request": 1}
    with db.transaction() as cur:
        cur.execute("DELETE FROM scms_requests")
        cur.execute("DELETE FROM scms_cards")
    assert db.statistics() == {"cards": {}, "requests": {}, "failures": {}}


def test_statistics_read_no_card_or_request_row(tmp_path: Path) -> None:
    """The statistics page reads the counters only (a fleet's 100,000 requests are not walked)."""
    db = Database(f"sqlite:///{tmp_path / 'scms.db'}")
    db.create()
    db.finish_request(db.new_request("t", "install", "isoapplet"), "failed", "card unknown")
    statements: list[str] = []
    db._db.set_trace_callback(statements.append)
    assert db.statistics()["failures"] == {"card unknown": 1}
    db.done_per_day()
    db._db.set_trace_callback(None)
    assert statements and not [s for s in statements if re.search(r"\bscms_(requests|cards)\b", s)]


def test_statistics_counters_under_concurrent_servers(url: str) -> None:
    """Eight connections (as serve processes) running request life cycles at once: no count lost, no
    deadlock between the counter rows."""
    db = Database(url)
    db.create()
    barrier = threading.Barrier(8)
    errors: list[str] = []

    def server(index: int) -> None:
        own = Database(url)
        barrier.wait()
        try:
            for n in range(10):
                request = own.new_request(f"t{index}", "install", "wallet-sim")
                own.claim_request(request, f"server-{index}")
                own.finish_request(request, "failed" if n % 3 == 0 else "done", "card unknown")
                own.upsert_card(f"cplc:{index}:{n}", "OP_READY")
                own.upsert_card(f"cplc:{index}:{n}", "SECURED")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            own.close()

    at_once(server, ((i,) for i in range(8)))
    assert not errors
    stats = db.statistics()
    assert stats == _counted_from_rows(db)
    assert stats["requests"] == {"install done": 48, "install failed": 32} and stats["cards"] == {"SECURED": 80}


def _expire(db: Database, request: int) -> float:
    """The request's last renewal moved back beyond the lease; returns that time."""
    stale = time.time() - LEASE_SECONDS - 1
    db.execute("UPDATE scms_requests SET updated_at = ? WHERE id = ?", (stale, request))
    return stale


def test_a_card_held_by_another_hosts_request_is_taken_over_when_its_lease_runs_out(url: str) -> None:
    db = Database(url)
    db.create()
    db.upsert_card("cplc:0001", "OP_READY")
    first, second = db.new_request("t", "install", "isoapplet"), db.new_request("t", "install", "isoapplet")
    elsewhere = "another-host.example:4242"  # not this host's process: only its lease tells
    assert db.claim_request(first, elsewhere) and db.claim_card("cplc:0001", first) is None
    assert db.claim_request(second, "here:1")
    assert db.claim_card("cplc:0001", second) == first  # renewed just now (claimed): it holds the card
    stale = _expire(db, first)
    assert db.renew_lease(first, elsewhere) and not db.renew_lease(first, "here:1")  # its server is alive
    assert db.claim_card("cplc:0001", second) == first
    assert not db.reap(first, elsewhere, "cplc:0001", stale)  # renewed after the expiry was seen: kept
    _expire(db, first)
    assert db.claim_card("cplc:0001", second) is None  # taken over
    record = db.request(first)
    assert record is not None and record.state == "failed" and "went away mid-request" in (record.reason or "")
    assert not db.renew_lease(first, elsewhere)  # the late server is told the request is no longer its


def test_the_lease_is_renewed_while_the_block_runs(url: str) -> None:
    db = Database(url)
    db.create()
    request = db.new_request("t", "install", "isoapplet")
    assert db.claim_request(request, "here:1")
    stale = _expire(db, request)

    def renewed() -> float:
        return float(db.query("SELECT updated_at FROM scms_requests WHERE id = ?", (request,))[0][0])

    with Lease(url, request, "here:1", every=0.05) as lease:
        for _ in range(100):
            if renewed() > stale:
                break
            time.sleep(0.05)
        assert renewed() > stale
    assert not lease._thread.is_alive()
    last = renewed()
    time.sleep(0.2)
    assert renewed() == last  # stopped with the block
