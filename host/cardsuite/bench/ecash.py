"""E-cash figures ([P004]) into build/bench/ecash.json: per payment, the card's hash operations and
APDUs for small and large amounts; payment time on the in-process simulator (and over vpcd when a slot is
free), at a new vendor, at a known one, and deep into a chain (the work does not grow with the count);
the card's persistent memory per vendor."""

from __future__ import annotations

import json
import platform
import tempfile
from pathlib import Path

from cardsuite.bench.stats import summary, timed
from cardsuite.ecash.card import EcashCard
from cardsuite.ecash.primitives import (
    MAX_UNITS_PER_PAYMENT,
    MAX_VENDORS,
    UNITS,
    card_operations,
    decompose,
    new_reference,
)
from cardsuite.ecash.roles import Broker, CertificateAuthority, EcashStore, Vendor
from cardsuite.errors import CardsuiteError
from cardsuite.project import Project
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.sim.vpcd import VpcdSimulator, free_slots
from cardsuite.trace import Trace
from cardsuite.transport.base import Transport
from cardsuite.wallet.card import Limits, Personalisation, WalletClient, manifest_transport_keys
from cardsuite.wallet.issuer import IssuerSecret
from cardsuite.wallet.sm import IssuerKeys

AMOUNTS = {"small": (7, 430), "large": (20_430, 99_999, 1_099_989)}
PIN = "2468"
# EcashConstants.java: what the purse allocates at install (bytes)
VENDOR_SLOT = 8 + len(UNITS) * (4 + 32)
FIXED_PERSISTENT = {"pid": 8, "last_sn": 4, "limits": 20, "spent": 20, "token_key": 32, "last_token": 247,
                    "state_and_vendor_count": 2, "ec_keys": "broker public key, c and g^c (P-256 key objects)"}
RAM_WORK = 378


def _purse(transport: Transport, project: Project, broker: Broker, ca: CertificateAuthority,
           counts: tuple[int, ...]) -> EcashCard:
    issuer = IssuerKeys.generate()
    client = WalletClient(transport)
    client.provision(manifest_transport_keys(project.manifest),
                     Personalisation.for_card("4111111111111111", secret=IssuerSecret.generate("e-cash bench"),
                                              holder=b"bench", limits=Limits(10, 10, 10), pin=PIN, puk="12345678",
                                              keys=issuer))
    client.open_issuer_session(issuer)
    card = EcashCard(client)
    card.personalise(broker.signature_point, broker.dh_point)
    ca_cert = ca.register("bench", card.public_value())
    card.load_range(broker.buy(ca_cert, counts))
    client.verify_pin(PIN)
    return card


def _time(card: EcashCard, amount: int, point_of, count: int) -> dict[str, float]:
    commands = [EcashCard.pay_command(amount, new_reference(), point_of(i)) for i in range(count)]
    return summary(timed(lambda i: card.transport.send(commands[i]), count))


def _measure(transport: Transport, project: Project, store: EcashStore, count: int) -> dict:
    ca = CertificateAuthority(store)
    broker = Broker(store, ca.public_point)
    big = (10**6, 10**6, 10**6, 10**6, 10**6)
    card = _purse(transport, project, broker, ca, big)
    known = Vendor(store, "bench-known", ca.public_point, broker.signature_point).public_point
    fresh = [Vendor(store, f"bench-new-{i}", ca.public_point, broker.signature_point).public_point
             for i in range(MAX_VENDORS - 1)]
    out: dict = {"payments": {}}
    for size, amounts in AMOUNTS.items():
        for amount in amounts:
            out["payments"][str(amount)] = {"size": size, **_time(card, amount, lambda i: known, count)}
    # deep into the chain: the same payments after the 1s chain at this vendor reached a large count
    for _ in range(50):
        card.transport.send(EcashCard.pay_command(99, new_reference(), known))
    deep = card.vendor_slots()[0].counts
    out["deep_chain"] = {"counts_at_vendor": deep, "430": _time(card, 430, lambda i: known, count)}
    out["new_vendor"] = _time(card, 430, lambda i: fresh[i], len(fresh))
    return out


def run_ecash_bench(project: Project, count: int = 200) -> Path:
    """Writes build/bench/ecash.json and returns its path."""
    figures: dict = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "units": list(UNITS),
        "max_units_per_payment": MAX_UNITS_PER_PAYMENT,
        "per_payment": {},
        "persistent_memory": {"per_vendor_bytes": VENDOR_SLOT, "max_vendors": MAX_VENDORS,
                              "vendor_slots_bytes": VENDOR_SLOT * MAX_VENDORS, "fixed": FIXED_PERSISTENT,
                              "ram_work_bytes": RAM_WORK},
    }
    plenty = [10**6] * len(UNITS)
    with tempfile.TemporaryDirectory() as tmp:
        store = EcashStore.open(Path(tmp) / "bench.db")
        sim = SimulatorTransport(project)
        sim.connect()
        # APDUs per payment, counted from the trace (VERIFY is once per session, not per payment)
        trace = Trace()
        ca = CertificateAuthority(store)
        broker = Broker(store, ca.public_point)
        card = _purse(sim, project, broker, ca, tuple(plenty))
        vendor = Vendor(store, "apdu-count", ca.public_point, broker.signature_point).public_point
        new_vendor = True  # the first payment opens the vendor's chains (one ECDH more)
        for size, amounts in AMOUNTS.items():
            for amount in amounts:
                split = decompose(amount, plenty)
                if split is None:  # cannot happen with plenty left; says so if the bound changes
                    raise CardsuiteError(f"bench amount {amount} is above the per-payment bound")
                sim.trace = trace
                trace.clear()
                card.pay(amount, new_reference(), vendor)
                sim.trace = None
                # the bridge counts the applet's digest and key agreement calls; the model must agree
                model = card_operations(split, new_vendor)
                measured = {"sha256": sim.operation_count("MessageDigest.doFinal"),
                            "ecdh": sim.operation_count("KeyAgreement.generateSecret")}
                if (measured["sha256"], measured["ecdh"]) != (model["sha256"], model["ecdh"]):
                    raise CardsuiteError(f"paying {amount}: the card computed {measured}, the model says {model}")
                figures["per_payment"][str(amount)] = {
                    "size": size, "units": dict(zip(map(str, UNITS), split, strict=True)),
                    "apdus": len(trace.entries), "measured_on": "new vendor" if new_vendor else "known vendor",
                    "measured": measured, "card_known_vendor": card_operations(split, False),
                    "card_new_vendor": card_operations(split, True)}
                new_vendor = False
        fresh = SimulatorTransport(project)
        fresh.connect()
        figures["simulator"] = _measure(fresh, project, store, count)
        slots = free_slots() if _pcscd_ok() else []
        if slots:
            try:
                with VpcdSimulator(project, slot=slots[0]) as simulator:
                    transport = simulator.transport()
                    transport.connect()
                    figures["vpcd"] = _measure(transport, project, store, max(20, count // 10))
                    transport.disconnect()
            except CardsuiteError as exc:
                figures["vpcd"] = {"skipped": str(exc)}
        else:
            figures["vpcd"] = {"skipped": "no free vpcd slot (or pcscd not running)"}
        store.close()
    target = project.build / "bench" / "ecash.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(figures, indent=2) + "\n")
    _print_table(figures)
    print(f"written {target.relative_to(project.root)}")
    return target


def _print_table(figures: dict) -> None:
    print(f"{'amount':>9} {'APDUs':>5} {'SHA-256 known/new vendor':>25} {'sim median ms':>14} {'vpcd median ms':>15}")
    vpcd = figures["vpcd"].get("payments", {})
    for amount, row in figures["per_payment"].items():
        known, new = row["card_known_vendor"]["sha256"], row["card_new_vendor"]["sha256"]
        sim_ms = figures["simulator"]["payments"][amount]["median_ms"]
        vpcd_ms = vpcd.get(amount, {}).get("median_ms", "-")
        print(f"{amount:>9} {row['apdus']:>5} {f'{known} / {new}':>25} {sim_ms:>14} {vpcd_ms:>15}")
    memory = figures["persistent_memory"]
    print(f"card persistent memory: {memory['per_vendor_bytes']} bytes per vendor, {memory['max_vendors']} vendors")


def _pcscd_ok() -> bool:
    from cardsuite.sim.vpcd import pcscd_running

    return pcscd_running()
