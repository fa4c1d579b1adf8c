"""Wallet payment figures: APDUs and milliseconds per payment, end to end — the merchant's request
(TS_M recorded), the card (SELECT, GET PUBLIC KEY, VERIFY, PAY), the merchant's checks and the issuer's
authorisation, both on a real SQLite file — on the in-process simulator and over vpcd.

Written to build/bench/wallet.json by ``run_wallet_bench(project)``.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

from cardsuite.bench.stats import summary
from cardsuite.project import Project
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.sim.vpcd import VpcdSimulator, free_slots
from cardsuite.trace import Trace, TraceEntry
from cardsuite.transport.base import Transport
from cardsuite.wallet.card import Limits, WalletClient, manifest_transport_keys
from cardsuite.wallet.issuer import Issuer, IssuerSecret
from cardsuite.wallet.merchant import Merchant, pay_with_card
from cardsuite.wallet.store import WalletStore

PIN = "2468"
PUK = "97531864"
AMOUNT = 100
LIMITS = Limits(max_balance=4_000_000_000, max_payment=1_000_000, step_up=1_000_000)
WARM_UP = 20


class _Counting:
    """A trace sink counting the APDUs a transport exchanges (GET RESPONSE and re-sends included)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, entry: TraceEntry) -> None:
        self.count += 1


def _payments(project: Project, transport: Transport, database: Path, count: int) -> dict:
    counter = _Counting()
    transport.trace = Trace(limit=1, sinks=[counter])  # the trace's entries are masked: nothing secret kept
    client = WalletClient(transport)
    with WalletStore(database) as registry:
        # the bench's own throw-away issuer on a simulated card: the development secret, asked for by name
        issuer = Issuer(registry, IssuerSecret.development())
        merchant = Merchant(registry, "BENCH001", {issuer.iin: issuer})
        issued = issuer.issue(client, manifest_transport_keys(project.manifest), holder="Bench", limits=LIMITS,
                              pin=PIN, puk=PUK)
        issuer.enrol(client, issued.account_id, evidence="benchmark card", pin=PIN)
        issuer.credit(client, issued.account_id, AMOUNT * (count + WARM_UP + 10))
        for _ in range(WARM_UP):
            merchant.complete(pay_with_card(client, merchant.request_payment(AMOUNT, b"bench item"), PIN))
        total, card, host = [], [], []
        clock = time.perf_counter
        before = counter.count
        for _ in range(count):
            t0 = clock()
            request = merchant.request_payment(AMOUNT, b"bench item")
            t1 = clock()
            answer = pay_with_card(client, request, PIN)
            t2 = clock()
            merchant.complete(answer)
            t3 = clock()
            total.append(t3 - t0)
            card.append(t2 - t1)
            host.append((t1 - t0) + (t3 - t2))
        apdus = (counter.count - before) / count
        approved = len(registry.all_evidence())
    return {
        "payments": count,
        "approved": approved - WARM_UP,
        "apdus_per_payment": apdus,
        "end_to_end": summary(total),
        "card_part": summary(card),
        "merchant_and_issuer_part": summary(host),
        "payments_per_second": summary(total)["per_second"],
    }


def run_wallet_bench(project: Project, count: int = 200) -> dict:
    """Median over ``count`` payments (after a warm-up) on each transport; writes build/bench/wallet.json."""
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="cardsuite-wallet-bench-") as scratch:
        with SimulatorTransport(project) as card:
            results["inprocess"] = _payments(project, card, Path(scratch) / "inprocess.db", count)
        slots = free_slots()
        if slots:
            with VpcdSimulator(project, slot=slots[0]) as simulator, simulator.transport() as card:
                results["vpcd"] = _payments(project, card, Path(scratch) / "vpcd.db", count)
        else:
            results["vpcd"] = {"skipped": "every vpcd slot holds a card"}
    report = {
        "what": "one wallet payment end to end: merchant request (TS_M), card SELECT + GET PUBLIC KEY + VERIFY + "
                "PAY, merchant checks (freshness, signature with PKC, V-Card), issuer authorisation, evidence kept; "
                "issuer and merchant on one SQLite file",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.platform()},
        "amount": AMOUNT,
        "results": results,
    }
    project.bench.mkdir(parents=True, exist_ok=True)
    out = project.bench / "wallet.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'transport':10} {'APDUs':>6} {'median ms':>10} {'p99 ms':>8} {'card ms':>8} {'host ms':>8} {'pay/s':>7}")
    for name, figures in results.items():
        if "skipped" in figures:
            print(f"{name:10} skipped: {figures['skipped']}")
            continue
        print(f"{name:10} {figures['apdus_per_payment']:>6} {figures['end_to_end']['median_ms']:>10} "
              f"{figures['end_to_end']['p99_ms']:>8} {figures['card_part']['median_ms']:>8} "
              f"{figures['merchant_and_issuer_part']['median_ms']:>8} {figures['payments_per_second']:>7}")
    print(f"written {out.relative_to(project.root)}")
    return report
