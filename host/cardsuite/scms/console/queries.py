"""What the console's pages read: each a bounded query on an index (the fleet has 100,000 cards and
1,000,000 events): lists are keyset-paginated (``WHERE key > last ORDER BY key LIMIT n + 1``, never OFFSET),
a card's or a request's records are read by their indexed key, the statistics from counters kept by
triggers (cardsuite.scms.db) and GROUP BYs over an index."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from cardsuite.deploy.inventory import Inventory
from cardsuite.scms.db import Database

PAGE = 50
DAYS = 30  # issuance per day over this many days
TOP = 12  # the most frequent applications and failure reasons shown
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    next: str | None  # the key to continue after, None on the last page


def _page(rows: list[tuple], limit: int, key: int = 0) -> Page[tuple]:
    more = len(rows) > limit
    return Page(rows[:limit], str(rows[limit - 1][key]) if more else None)


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    operation: str = ""
    request_id: int | None = None
    since: float | None = None
    until: float | None = None

    def where(self) -> tuple[list[str], list[object]]:
        clauses: list[str] = []
        args: list[object] = []
        for clause, value in (("actor = ?", self.actor or None), ("operation = ?", self.operation or None),
                              ("request_id = ?", self.request_id), ("at >= ?", self.since),
                              ("at < ?", self.until)):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        return clauses, args


def cards(db: Database, state: str = "", after: str = "", limit: int = PAGE) -> Page[tuple]:
    """(cin, state, profile, order_ref, blacklisted, auth_failures) by CIN; on (state, cin) or the key."""
    where, args = ["cin > ?"], [after]
    if state:
        where.append("state = ?")
        args.append(state)
    return _page(db.query("SELECT cin, state, profile, order_ref, blacklisted, auth_failures FROM scms_cards "
                          f"WHERE {' AND '.join(where)} ORDER BY cin LIMIT ?", (*args, limit + 1)), limit)


def card_requests(db: Database, cin: str, limit: int = 20) -> list[tuple]:
    return db.query("SELECT id, action, target, state, reason, updated_at FROM scms_requests WHERE cin = ? "
                    "ORDER BY id DESC LIMIT ?", (cin, limit))


def card_inventory(inventory: Inventory, cin: str, events: int = PAGE) -> tuple[tuple | None, list, list]:
    """The inventory's record of a card: (life cycle, profile, last seen), its contents, its last events."""
    with inventory.transaction() as cur:
        card = cur.fetchall("SELECT life_cycle, profile, last_seen, station FROM inv_cards WHERE card = ?", (cin,))
        contents = cur.fetchall("SELECT kind, aid, state, parent, detail FROM inv_contents WHERE card = ? "
                                "ORDER BY kind, aid LIMIT 500", (cin,))
        history = cur.fetchall("SELECT at, station, action, target, outcome, detail FROM inv_events WHERE card = ? "
                               "ORDER BY id DESC LIMIT ?", (cin, events))
    return (card[0] if card else None), contents, history


def requests(db: Database, state: str = "", before: int | None = None, limit: int = PAGE) -> Page[tuple]:
    """(id, terminal, action, target, cin, state, reason, updated_at), newest first."""
    where, args = ["id < ?"], [before if before is not None else 2**62]
    if state:
        where.append("state = ?")
        args.append(state)
    return _page(db.query("SELECT id, terminal, action, target, cin, state, reason, updated_at FROM scms_requests "
                          f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", (*args, limit + 1)), limit)


def request_exchanges(db: Database, request_id: int, limit: int = 2000) -> list[tuple]:
    """As recorded: masked by the trace's rule set before they reached the database (cardsuite.trace)."""
    return db.query("SELECT seq, command, response, sw, seconds FROM scms_exchanges WHERE request_id = ? "
                    "ORDER BY seq LIMIT ?", (request_id, limit))


def audit(db: Database, where: AuditFilter, before: int | None = None, limit: int = PAGE) -> Page[tuple]:
    """(id, at, actor, operation, key_label, request_id, detail), newest first."""
    clauses, args = where.where()
    clauses.append("id < ?")
    args.append(before if before is not None else 2**62)
    return _page(db.query("SELECT id, at, actor, operation, key_label, request_id, detail FROM scms_audit "
                          f"WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?", (*args, limit + 1)), limit)


def record_action(db: Database, user: str, operation: str, detail: str) -> None:
    """A console change in the audit log beside the KMS's key uses."""
    db.record_audit([(time.time(), f"console:{user}", operation, None, None, detail)])


@dataclass(frozen=True)
class Statistics:
    cards_by_state: list[tuple[str, int]]
    issuance_per_day: list[tuple[str, int]]  # requests done per UTC day, the last DAYS days
    applications: list[tuple[str, int]]  # instances per AID in the inventory
    failures: list[tuple[str, int]]  # failed requests per reason, the last DAYS days
    requests: list[tuple[str, int]]  # requests per "action state", the last DAYS days


def statistics(db: Database, inventory: Inventory, now: float | None = None) -> Statistics:
    """The CMS's figures (Database.statistics) with issuance per day and the inventory's applications."""
    today = int((now if now is not None else time.time()) // 86400)
    since = (today - DAYS + 1) * 86400
    paper = db.statistics(since)
    per_day = db.done_per_day(since)
    days = [(time.strftime("%m-%d", time.gmtime(d * 86400)), int(per_day.get(d, 0)))
            for d in range(today - DAYS + 1, today + 1)]
    with inventory.transaction() as cur:
        apps = cur.fetchall("SELECT aid, COUNT(*) FROM inv_contents WHERE kind = 'APP' GROUP BY aid "
                            "ORDER BY COUNT(*) DESC LIMIT ?", (TOP,))
    return Statistics(sorted(paper["cards"].items()), days, _pairs(apps), list(paper["failures"].items())[:TOP],
                      sorted(paper["requests"].items()))


def _pairs(rows: Sequence[tuple]) -> list[tuple[str, int]]:
    return [(str(label), int(n)) for label, n in rows]
