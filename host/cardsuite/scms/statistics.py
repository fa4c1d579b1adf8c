"""The statistics the console shows (issue 14: cards by state, issuance per day, applications installed,
failures by reason), each one indexed query: cards by state on scms_cards_state, issuance on inv_events_action
(action, outcome, at), applications on inv_contents_kind (kind, aid), failures on scms_requests_state."""

from __future__ import annotations

import time

from cardsuite.deploy.inventory import Inventory
from cardsuite.scms.db import Database

DAY = 86400
ISSUANCE_PER_DAY = ("SELECT CAST(at AS INTEGER) / 86400 AS day, COUNT(*) FROM inv_events "
                    "WHERE action = 'deploy' AND outcome = 'ok' AND at >= ? GROUP BY day ORDER BY day")
APPLICATIONS_INSTALLED = "SELECT aid, COUNT(*) FROM inv_contents WHERE kind = 'APP' GROUP BY aid ORDER BY aid"
FAILURES_BY_REASON = ("SELECT COALESCE(reason, ''), COUNT(*) FROM scms_requests WHERE state = 'failed' "
                      "GROUP BY reason ORDER BY COUNT(*) DESC")


def issuance_per_day(inventory: Inventory, days: int = 30, now: float | None = None) -> dict[int, int]:
    """Cards deployed per day (days since the epoch, UTC) over the last ``days`` days."""
    since = (time.time() if now is None else now) - days * DAY
    with inventory.transaction() as cur:
        return {int(day): int(n) for day, n in cur.fetchall(ISSUANCE_PER_DAY, (since,))}


def applications_installed(inventory: Inventory) -> dict[str, int]:
    """How many cards hold each application instance (by AID)."""
    with inventory.transaction() as cur:
        return {aid: int(n) for aid, n in cur.fetchall(APPLICATIONS_INSTALLED)}


def failures_by_reason(db: Database) -> dict[str, int]:
    return {reason: int(n) for reason, n in db.query(FAILURES_BY_REASON)}
