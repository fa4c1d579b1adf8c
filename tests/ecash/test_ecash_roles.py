"""Every cheat [P004] names, tried against the vendor and the broker: a vendor forging a token, a customer
spending past the range, a replay at the same vendor (and at the broker), the same units spent at two
vendors (caught at deposit), a tampered range certificate, a payword that does not hash to the root; and
limited traceability: the broker's and the CA's records together name the cheat, neither alone can."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest
from cardsuite.ecash.primitives import (
    EcashError,
    RangeBody,
    RangeCertificate,
    SoftPurse,
    TokenRow,
    chain_forward,
    chain_root,
    ecdh_x,
    new_reference,
    payword,
)
from cardsuite.ecash.roles import Broker, CertificateAuthority, EcashStore, trace
from support.ecashkit import Customer, World, new_customer


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> World:
    return World.create(tmp_path_factory.mktemp("ecash-roles") / "roles.db")


@pytest.fixture(scope="module")
def customer(module_card, project, shared) -> Customer:
    return new_customer(module_card, project, shared)


def _soft(world: World, identity: str, counts, honest: bool = False):
    purse = SoftPurse(world.broker.dh_point, honest=honest)
    ca_cert = world.ca.register(identity, purse.public_value)
    cert = world.broker.buy(ca_cert, counts)
    purse.load_range(cert, world.broker.signature_point)
    return purse, ca_cert, [cert]


def _pay_soft(purse: SoftPurse, ca_cert, ranges, vendor, amount: int):
    reference = new_reference()
    token = purse.pay(amount, reference, vendor.public_point)
    vendor.accept(ca_cert, ranges, token, amount, reference)
    return token


@pytest.mark.e2e
def test_card_tokens_are_deposited_and_paid(purse: Customer, shared: World) -> None:
    bakery, books = shared.vendor("bakery"), shared.vendor("books")
    for vendor, amount in ((bakery, 20_430), (books, 1_234), (bakery, 3_500), (books, 50_005)):
        purse.pay(vendor, amount)
    paid = [r.paid for v in (bakery, books) for r in v.deposit(shared.broker)]
    assert paid == [20_430, 3_500, 1_234, 50_005]
    assert shared.broker.vendor_paid(bakery.public_point) == 23_930
    assert shared.broker.spent(purse.ca_cert.pid) == tuple(purse.card.status().spent)


def test_a_vendor_cannot_forge_a_token(purse: Customer, shared: World) -> None:
    """The vendor knows the root, so its payword is right; it lacks K_T, so the certificate is not."""
    vendor = shared.vendor("forger")
    token, _ = purse.pay(vendor, 10_000)
    x = ecdh_x(vendor._key, purse.ca_cert.public_value)
    forged_row = TokenRow(4, 2, payword(chain_forward(chain_root(x, 4), 2)))
    forged = replace(token, reference=new_reference(), rows=(forged_row,), cert=bytes(32))
    vendor.keep(forged, 10_000)
    results = vendor.deposit(shared.broker)
    assert [(r.paid, r.refused) for r in results] == [(10_000, None), (0, "forged")]
    resigned = replace(token, amount=99_999)  # any change to the body breaks the card's certificate
    assert shared.broker.deposit("forger", vendor.public_point, resigned).refused in ("forged", "replay")


def test_a_vendor_cannot_deposit_another_vendors_token(purse: Customer, shared: World) -> None:
    token, _ = purse.pay(shared.vendor("bakery"), 5)
    thief = shared.vendor("thief")
    assert shared.broker.deposit("thief", thief.public_point, token).refused == "wrong-vendor"


def test_replays_are_refused_by_vendor_and_broker(purse: Customer, shared: World) -> None:
    vendor = shared.vendor("replay")
    reference = new_reference()
    token = purse.card.pay(300, reference, vendor.public_point)
    vendor.accept(purse.ca_cert, purse.ranges, token, 300, reference)
    with pytest.raises(EcashError, match="does not move forward"):
        vendor.accept(purse.ca_cert, purse.ranges, token, 300, reference)
    first = shared.broker.deposit("replay", vendor.public_point, token)
    again = shared.broker.deposit("replay", vendor.public_point, token)
    assert (first.paid, again.refused) == (300, "replay")


def test_a_payword_that_does_not_hash_to_the_root_is_refused(purse: Customer, shared: World) -> None:
    vendor, other = shared.vendor("checker"), shared.vendor("other")
    reference = new_reference()
    token = purse.card.pay(110, reference, vendor.public_point)
    bad = token.rows[0]
    flipped = replace(token, rows=(replace(bad, payword=bytes([bad.payword[0] ^ 1]) + bad.payword[1:]),
                                   *token.rows[1:]))
    with pytest.raises(EcashError, match="does not hash to the root"):
        vendor.accept(purse.ca_cert, purse.ranges, flipped, 110, reference)
    # the payword for a count it does not stand for
    skipped = replace(token, rows=(replace(bad, count=bad.count + 1), *token.rows[1:]), amount=110 + 10 ** bad.unit)
    with pytest.raises(EcashError, match="does not hash to the root"):
        vendor.accept(purse.ca_cert, purse.ranges, skipped, skipped.amount, reference)
    # another vendor's chain: refused for its vendor ID, and its paywords are not this vendor's either
    elsewhere = purse.card.pay(110, reference, other.public_point)
    with pytest.raises(EcashError, match="another vendor"):
        vendor.accept(purse.ca_cert, purse.ranges, elsewhere, 110, reference)
    disguised = replace(elsewhere, vendor_id=vendor.vendor_id)
    with pytest.raises(EcashError, match="does not hash to the root"):
        vendor.accept(purse.ca_cert, purse.ranges, disguised, 110, reference)
    vendor.accept(purse.ca_cert, purse.ranges, token, 110, reference)  # the real one still goes through


def test_amount_and_order_are_bound(purse: Customer, shared: World) -> None:
    vendor = shared.vendor("orders")
    reference = new_reference()
    token = purse.card.pay(250, reference, vendor.public_point)
    with pytest.raises(EcashError, match="another order"):
        vendor.accept(purse.ca_cert, purse.ranges, token, 250, new_reference())
    with pytest.raises(EcashError, match="another order"):
        vendor.accept(purse.ca_cert, purse.ranges, token, 260, reference)
    lying = replace(token, amount=260)
    with pytest.raises(EcashError, match="move forward by 250"):
        vendor.accept(purse.ca_cert, purse.ranges, lying, 260, reference)


def test_tampered_certificates_are_refused_by_the_vendor(purse: Customer, shared: World) -> None:
    vendor = shared.vendor("certs")
    reference = new_reference()
    token = purse.card.pay(20, reference, vendor.public_point)
    cert = purse.ranges[0]
    inflated = RangeCertificate(RangeBody((*cert.body.counts[:4], 999), cert.body.pid, cert.body.sn), cert.signature)
    with pytest.raises(EcashError, match="does not verify"):
        vendor.accept(purse.ca_cert, [inflated], token, 20, reference)
    wrong_ca = replace(purse.ca_cert, public_value=SoftPurse(shared.broker.dh_point).public_value)
    with pytest.raises(EcashError, match="CA certificate does not verify"):
        vendor.accept(wrong_ca, purse.ranges, token, 20, reference)


def test_spending_past_the_range_is_caught(world: World) -> None:
    """A purse that ignores its ranges (a cloned or opened card): one vendor sees the count pass the
    certified range; across vendors each count stays inside it and the broker catches the sum."""
    cheat, ca_cert, ranges = _soft(world, "Mallory", (0, 0, 5, 0, 0))
    one = world.vendor("one")
    _pay_soft(cheat, ca_cert, ranges, one, 500)
    with pytest.raises(EcashError, match="past the certified range"):
        _pay_soft(cheat, ca_cert, ranges, one, 100)


def test_the_same_units_at_two_vendors_are_caught_at_deposit_and_traced(world: World) -> None:
    cheat, ca_cert, ranges = _soft(world, "Mallory Kim", (0, 0, 0, 0, 1))
    kiosk, bakery = world.vendor("kiosk"), world.vendor("bakery")
    _pay_soft(cheat, ca_cert, ranges, kiosk, 10_000)
    _pay_soft(cheat, ca_cert, ranges, bakery, 10_000)  # each vendor alone sees a valid payment
    [first] = kiosk.deposit(world.broker)
    [second] = bakery.deposit(world.broker)
    assert (first.paid, second.paid, second.refused) == (10_000, 0, "double-spending")
    assert trace(world.broker, world.ca, second.report_id) == "Mallory Kim"
    # an honest customer with the same kind of range is paid at both vendors
    honest, ca2, ranges2 = _soft(world, "Alice", (0, 0, 0, 0, 2), honest=True)
    _pay_soft(honest, ca2, ranges2, kiosk, 10_000)
    _pay_soft(honest, ca2, ranges2, bakery, 10_000)
    assert [r.paid for v in (kiosk, bakery) for r in v.deposit(world.broker)] == [10_000, 10_000]


def test_only_the_broker_and_the_ca_together_can_trace(world: World, tmp_path) -> None:
    """The CA's tables link identities and PIDs and hold no token; the broker's hold PIDs and tokens and no
    identity. Copied into separate files, each alone fails to trace a report; together they name the cheat."""
    cheat, ca_cert, ranges = _soft(world, "Eve Lee", (0, 0, 0, 0, 1))
    kiosk, bakery = world.vendor("kiosk"), world.vendor("bakery")
    _pay_soft(cheat, ca_cert, ranges, kiosk, 10_000)
    _pay_soft(cheat, ca_cert, ranges, bakery, 10_000)
    kiosk.deposit(world.broker)
    [caught] = bakery.deposit(world.broker)

    def only(tables: str, name: str) -> EcashStore:
        path = tmp_path / name
        source = world.store.db
        store = EcashStore.open(path)
        for (table,) in source.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?",
                                       (f"ecash_{tables}%",)).fetchall():
            rows = source.execute(f"SELECT * FROM {table}").fetchall()
            if rows:
                marks = ",".join("?" * len(rows[0]))
                with store.transaction() as db:
                    db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        keys = source.execute("SELECT * FROM ecash_keys WHERE role LIKE ?", (f"{tables}%",)).fetchall()
        with store.transaction() as db:
            db.executemany("INSERT INTO ecash_keys VALUES (?, ?, ?)", keys)
        return store

    broker_store, ca_store = only("broker", "broker.db"), only("ca", "ca.db")
    broker_dump = "\n".join(sqlite3.connect(tmp_path / "broker.db").iterdump())
    ca_dump = "\n".join(sqlite3.connect(tmp_path / "ca.db").iterdump())
    assert "Eve Lee" not in broker_dump and "Eve Lee" in ca_dump
    assert caught.token.cert.hex().upper() in broker_dump.upper()
    assert caught.token.cert.hex().upper() not in ca_dump.upper()
    reports = 'INSERT INTO "ecash_broker_reports"'
    assert reports not in ca_dump and reports in broker_dump

    ca_alone = CertificateAuthority(ca_store)
    broker_alone = Broker(broker_store, ca_alone.public_point)
    empty = World.create(tmp_path / "empty.db")
    with pytest.raises(EcashError, match="unknown to this CA"):
        trace(broker_alone, empty.ca, caught.report_id)  # the broker knows the PID, not who it is
    with pytest.raises(EcashError, match="no report"):
        trace(empty.broker, ca_alone, caught.report_id)  # the CA knows identities, not which one cheated
    assert trace(broker_alone, ca_alone, caught.report_id) == "Eve Lee"
