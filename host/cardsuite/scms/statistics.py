"""The inventory's statistics for the console (issue 14: issuance per day, applications installed): issuance
from the counter the inventory's triggers keep (inv_deploy_counts: one row per UTC day, inventory_schema),
applications an indexed query on inv_contents_kind (kind, aid). The SCMS's own (card states, requests,
failures by reason) are Database.statistics."""

from __future__ import annotations

import time

from cardsuite.deploy.inventory import Inventory

DAY = 86400
ISSUANCE_PER_DAY = "SELECT day, n FROM inv_deploy_counts WHERE day >= ? AND n > 0 ORDER BY day"
APPLICATIONS_INSTALLED = "SELECT aid, COUNT(*) FROM inv_contents WHERE kind = 'APP' GROUP BY aid ORDER BY aid"


def issuance_per_day(inventory: Inventory, days: int = 30, now: float | None = None) -> dict[int, int]:
    """Cards deployed per day (days since the epoch, UTC) from the day ``days`` days ago on (that day whole),
    read from the counters: a few rows however many events the fleet has."""
    since = int(((time.time() if now is None else now) - days * DAY) // DAY)
    with inventory.transaction() as cur:
        return {int(day): int(n) for day, n in cur.fetchall(ISSUANCE_PER_DAY, (since,))}


def applications_installed(inventory: Inventory) -> dict[str, int]:
    """How many cards hold each application instance (by AID)."""
    with inventory.transaction() as cur:
        return {aid: int(n) for aid, n in cur.fetchall(APPLICATIONS_INSTALLED)}
