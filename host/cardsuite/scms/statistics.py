"""The inventory's statistics for the console (issue 14: issuance per day, applications installed), each one
indexed query: issuance on inv_events_action (action, outcome, at), applications on inv_contents_kind (kind,
aid). The SCMS's own (card states, requests, failures by reason) are Database.statistics."""

from __future__ import annotations

import time

from cardsuite.deploy.inventory import Inventory

DAY = 86400
ISSUANCE_PER_DAY = ("SELECT CAST(at AS INTEGER) / 86400 AS day, COUNT(*) FROM inv_events "
                    "WHERE action = 'deploy' AND outcome = 'ok' AND at >= ? GROUP BY day ORDER BY day")
APPLICATIONS_INSTALLED = "SELECT aid, COUNT(*) FROM inv_contents WHERE kind = 'APP' GROUP BY aid ORDER BY aid"


def issuance_per_day(inventory: Inventory, days: int = 30, now: float | None = None) -> dict[int, int]:
    """Cards deployed per day (days since the epoch, UTC) over the last ``days`` days."""
    since = (time.time() if now is None else now) - days * DAY
    with inventory.transaction() as cur:
        return {int(day): int(n) for day, n in cur.fetchall(ISSUANCE_PER_DAY, (since,))}


def applications_installed(inventory: Inventory) -> dict[str, int]:
    """How many cards hold each application instance (by AID)."""
    with inventory.transaction() as cur:
        return {aid: int(n) for aid, n in cur.fetchall(APPLICATIONS_INSTALLED)}
