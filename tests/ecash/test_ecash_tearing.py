"""Power lost at every persistent write of ECASH PAY and LOAD RANGE: the purse is either untouched or
fully moved on (spent counts, the vendor's chain state and count, the last token together), and after a
torn payment the next one still verifies at the vendor: no chain state was half written. In-process
simulator only."""

from __future__ import annotations

import pytest
from cardsuite.ecash.card import EcashCard
from cardsuite.ecash.primitives import Token, new_reference
from cardsuite.testing.tearing import TearAtEveryWrite
from support.ecashkit import Customer, World, new_customer

pytestmark = [pytest.mark.sim_only]


def _snapshot(customer: Customer) -> tuple:
    customer.reselect()
    return customer.card.status(), tuple(customer.card.vendor_slots()), customer.card.last_token()


def _tear_everywhere(tear: TearAtEveryWrite, customer: Customer, command_of,
                     untorn=lambda response: None) -> tuple[int, set[bool]]:
    card = customer.wallet.transport
    assert card is tear.card
    before = _snapshot(customer)
    response, writes = tear.count_writes(lambda: card.send(command_of()))
    untorn(response)
    assert _snapshot(customer) != before
    outcomes = set()
    starts: list[tuple] = []

    def torn(point: int) -> None:
        start, end = starts[-1], _snapshot(customer)
        outcomes.add(end == start)
        if end != start:  # completed: the purse moved on exactly as an untorn payment would
            assert end[0].spent != start[0].spent, f"torn at write {point} of {writes}"

    tear(lambda: card.transmit(command_of()), prepare=lambda: starts.append(_snapshot(customer)), after_tear=torn,
         writes=writes)
    return writes, outcomes


@pytest.mark.isolated
@pytest.mark.parametrize("vendor_known", [True, False], ids=["known-vendor", "new-vendor"])
def test_payment_is_all_or_nothing_at_every_tear_point(card, project, world: World, vendor_known: bool,
                                                       tear_at_every_write: TearAtEveryWrite) -> None:
    customer = new_customer(card, project, world)
    vendor = world.vendor("tear")
    if vendor_known:
        customer.pay(vendor, 1_111)
    points = iter(range(1000))
    references: list[bytes] = []

    def command():
        point = vendor.public_point if vendor_known else world.vendor(f"tear-{next(points)}").public_point
        references.append(new_reference())
        return EcashCard.pay_command(20_430, references[-1], point)

    def hand_to_vendor(response) -> None:  # the untorn payment is a real one: the vendor takes it
        if vendor_known:
            vendor.accept(customer.ca_cert, customer.ranges, Token.parse(response.data), 20_430, references[-1])

    writes, outcomes = _tear_everywhere(tear_at_every_write, customer, command, hand_to_vendor)
    assert writes > 5
    assert outcomes == {True}  # every write is inside the transaction: a tear rolls the payment back
    customer.reselect()
    token, receipt = customer.pay(vendor, 20_430)  # the chain state is whole: the vendor verifies
    assert receipt.amount == 20_430
    results = vendor.deposit(world.broker)
    assert all(r.accepted for r in results) and results[-1].token == token


@pytest.mark.isolated
def test_load_range_is_all_or_nothing_at_every_tear_point(card, project, world: World,
                                                          tear_at_every_write: TearAtEveryWrite) -> None:
    customer = new_customer(card, project, world)
    certs = iter([world.broker.buy(customer.ca_cert, (1, 2, 3, 4, 5)) for _ in range(40)])
    writes, outcomes = _tear_everywhere(tear_at_every_write, customer,
                                        lambda: EcashCard.load_range_command(next(certs)))
    assert writes > 3
    assert outcomes == {True}
