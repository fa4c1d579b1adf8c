"""CMS pre-issuance: card orders imported from a personalisation bureau (CSV or JSON), the personalisation
data the bureau needs exported per batch (profile-driven, rendered with jinja2: templates/bureau.csv.j2), and
each card tracked from its order (``ordered`` -> ``exported``) to the card it became (linked by its CIN when it
is first served, then its GlobalPlatform life cycle up to SECURED)."""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2

from cardsuite.deploy.profiles import load_card_profile
from cardsuite.errors import ConfigurationError
from cardsuite.scms.db import Database

TEMPLATES = Path(__file__).parent / "templates"
FIELDS = ("ref", "holder", "profile")


@dataclass(frozen=True)
class Order:
    ref: str
    holder: str
    profile: str


def read_orders(path: Path) -> list[Order]:
    """CSV with a header ref,holder,profile, or a JSON list of objects with those keys."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the orders {path}: {exc.strerror}") from None
    if path.suffix == ".json":
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ConfigurationError(f"{path}: a JSON list of orders ({', '.join(FIELDS)}) was expected")
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    orders = []
    for number, row in enumerate(rows, 1):
        missing = [f for f in FIELDS if not str(row.get(f) or "").strip()]
        if missing:
            raise ConfigurationError(f"{path}: order {number} lacks {', '.join(missing)}")
        orders.append(Order(*(str(row[f]).strip() for f in FIELDS)))
    refs = [o.ref for o in orders]
    twice = sorted({r for r in refs if refs.count(r) > 1})
    if twice:
        raise ConfigurationError(f"{path}: order references used twice: {', '.join(twice)}")
    return orders


def import_orders(db: Database, orders: list[Order], batch: str, profiles: Path) -> int:
    """All orders of the batch in one transaction (a file half imported is not imported); every profile must
    exist."""
    for order in orders:
        if not (profiles / f"{order.profile}.toml").is_file():
            raise ConfigurationError(f"order {order.ref}: no card profile {order.profile!r} in {profiles}")
    now = time.time()
    with db.transaction() as cur:
        for order in orders:
            if cur.fetchall("SELECT ref FROM scms_orders WHERE ref = ?", (order.ref,)):
                raise ConfigurationError(f"order {order.ref} was imported before")
            cur.execute("INSERT INTO scms_orders (ref, batch, profile, holder, state, created_at, updated_at) "
                        "VALUES (?, ?, ?, ?, 'ordered', ?, ?)",
                        (order.ref, batch, order.profile, order.holder, now, now))
    return len(orders)


def export_batch(db: Database, batch: str, profiles: Path) -> str:
    """The bureau's file for the orders of ``batch`` not yet exported; they become ``exported``."""
    rows = db.query("SELECT ref, holder, profile FROM scms_orders WHERE batch = ? AND state = 'ordered' "
                    "ORDER BY ref", (batch,))
    if not rows:
        raise ConfigurationError(f"batch {batch!r} has no orders waiting for export")
    orders = []
    for ref, holder, profile_name in rows:
        profile = load_card_profile(profiles / f"{profile_name}.toml")
        orders.append({"ref": ref, "holder": holder, "profile": profile_name, "packages": profile.packages,
                       "applications": [a.name for a in profile.applications]})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False)
    text = env.get_template("bureau.csv.j2").render(orders=orders)
    db.execute("UPDATE scms_orders SET state = 'exported', updated_at = ? WHERE batch = ? AND state = 'ordered'",
               (time.time(), batch))
    return text


def link_card(db: Database, ref: str, cin: str) -> None:
    """The bureau's answer: order ``ref`` is the card ``cin`` (its CPLC identity), now known to the CMS."""
    rows = db.query("SELECT profile FROM scms_orders WHERE ref = ? AND state = 'exported'", (ref,))
    if not rows:
        raise ConfigurationError(f"no exported order {ref}")
    db.execute("UPDATE scms_orders SET state = 'personalised', cin = ?, updated_at = ? WHERE ref = ?",
               (cin, time.time(), ref))
    db.upsert_card(cin, "OP_READY", profile=rows[0][0], order_ref=ref)


def order_states(db: Database, batch: str) -> dict[str, str]:
    """Each order of the batch with its state: the order's until it is a card, then the card's life cycle."""
    rows = db.query("SELECT o.ref, o.state, c.state FROM scms_orders o LEFT JOIN scms_cards c ON c.cin = o.cin "
                    "WHERE o.batch = ? ORDER BY o.ref", (batch,))
    return {ref: card_state or state for ref, state, card_state in rows}
