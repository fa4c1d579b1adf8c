"""A failed request's reason kind: what the statistics count failures by ("failures by reason", issue 14).

A request's ``reason`` is a sentence for the operator and names the card, the request or the server
("card cplc:4790… is blacklisted"): counted as it is, every failed card was a bucket of its own. Its kind is a
short label from a fixed vocabulary (KINDS, matched on the sentences the ADS, the server and the database
write), else the sentence with what varies from one request to the next taken out (``normalised``). The
sentence stays the request's detail (scms_requests.reason, shown on the request's page); the kind is
scms_requests.reason_kind, what the counters group by.
"""

from __future__ import annotations

import re

# (kind, pattern over the reason): the ADS's refusals and the failures it records (cardsuite.scms.ads), a
# reaped request (Database.reap), the cardholder's PIN step (relay), the secure channel's cryptogram check
KINDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((kind, re.compile(pattern)) for kind, pattern in (
    ("unknown card", r"^card .+? is unknown to the CMS"),
    ("blacklisted card", r"^card .+? is blacklisted"),
    ("brick guard: too many authentication failures", r"^card .+? failed authentication \d+ times"),
    ("card busy with another request", r"^card .+? is being served by request"),
    ("key rotation in flight", r"^card .+? is in the middle of a key rotation"),
    ("server went away mid-request", r"^the server \S+ went away mid-request"),
    ("claimed by another server", r"^request \d+ was claimed by another server"),
    ("request ended already", r"^request \d+ is \w+ already"),
    ("application not in the catalogue", r"^application .* is not in the catalogue"),
    ("application not on the card", r"^the card has no application"),
    ("wrong card keys (cryptogram)", r"card cryptogram|wrong keys for this card"),
    ("cardholder PIN not set", r"^the cardholder's PIN was not set|nobody can choose its PIN|"
                                r"the wallet keeps its one-time PIN"),
    ("unknown action", r"^action .*: valid are"),
))

# what varies in other sentences: card identities (gp.client.Cplc.identity, GlobalPlatform.card_identity),
# a server process (host:pid), long hex (AIDs, data), and counts; a status word (4 hex digits) stays
_VARYING = (
    (re.compile(r"\bcplc:[0-9A-Fa-f]+|\breader:.*?\|atr:[0-9A-Fa-f]*"), "<card>"),
    (re.compile(r"\b[\w.-]+:\d+\b"), "<server>"),
    (re.compile(r"\b[0-9A-Fa-f]{10,}\b"), "<hex>"),
    (re.compile(r"\b(?:\d{1,3}|\d{5,})\b"), "N"),
)
MAX_KIND = 80  # characters of a normalised kind


def normalised(reason: str) -> str:
    text = reason
    for pattern, replacement in _VARYING:
        text = pattern.sub(replacement, text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_KIND else text[:MAX_KIND - 1] + "…"


def reason_kind(reason: str | None) -> str:
    """The kind a failed request with this reason is counted under ('' for none)."""
    if not reason:
        return ""
    for kind, pattern in KINDS:
        if pattern.search(reason):
            return kind
    return normalised(reason)
