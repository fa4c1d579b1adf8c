"""The wallet's e-cash purse on the card ([P004]): payments the vendor verifies and the broker pays, the
[P004]'s decomposition example, fall-back to smaller units, range certificates checked, and the exact status
word of every refusal (never 6F00), with nothing changed by a refused command."""

from __future__ import annotations

import pytest
from cardsuite.apdu import CommandAPDU, StatusError
from cardsuite.ecash.card import INS_ECASH_PERSONALISE, EcashCard, PurseState
from cardsuite.ecash.primitives import (
    RangeBody,
    RangeCertificate,
    certify_token,
    chain_forward,
    chain_root,
    ecdh_x,
    encode_point,
    new_private_key,
    new_reference,
    payword,
    sign,
    token_key,
    vendor_id,
)
from cardsuite.trace import Trace
from cardsuite.wallet.card import WalletClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import status_word
from support.ecashkit import PIN, SEED_COUNTS, Customer, World, issue_wallet, new_customer


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World.create(tmp_path_factory.mktemp("ecash") / "roles.db")


@pytest.fixture(scope="module")
def customer(module_card, project, world) -> Customer:
    return new_customer(module_card, project, world)


@pytest.mark.e2e
def test_the_papers_example_is_paid_verified_and_deposited(purse: Customer, world: World) -> None:
    """20,430 = 2 × 10,000 + 4 × 100 + 3 × 10: the vendor checks each payword against the root it computes
    from g^c and v; the broker checks the certificate with K_T and pays exactly 20,430."""
    vendor = world.vendor("bakery")
    before = purse.card.status()
    token, receipt = purse.pay(vendor, 20_430)
    assert [(r.unit, r.count) for r in token.rows] == [(4, 2), (2, 4), (1, 3)]
    assert (token.pid, token.vendor_id, token.amount) == (purse.ca_cert.pid, vendor_id(vendor.public_point), 20_430)
    after = purse.card.status()
    assert [a - b for a, b in zip(after.spent, before.spent, strict=True)] == [0, 3, 4, 0, 2]
    assert receipt.amount == 20_430
    [result] = vendor.deposit(world.broker)
    assert result.accepted and result.paid == 20_430
    assert purse.card.last_token() == token


def test_paywords_are_the_chain_the_seed_describes(purse: Customer, world: World) -> None:
    """s_0 = H(x(c·V) ‖ 'R' ‖ e), s_k = H(s_(k-1)), pw_k = H(s_k ‖ 'P'); the certificate is HMAC(K_T, body)
    with K_T = H(x(c·B) ‖ 'K'): recomputed here from the vendor's and the broker's secrets."""
    v = new_private_key()
    token = purse.card.pay(1_111, new_reference(), encode_point(v.public_key()))
    x = ecdh_x(v, purse.ca_cert.public_value)
    for row in token.rows:
        assert row.count == 1
        assert row.payword == payword(chain_forward(chain_root(x, row.unit), 1))
    assert certify_token(token_key(ecdh_x(world.broker._dh, purse.ca_cert.public_value)), token.body) == token.cert
    again = purse.card.pay(2_222, new_reference(), encode_point(v.public_key()))
    for row in again.rows:  # the chain hashed forward from where it stopped
        assert row.count == 3
        assert row.payword == payword(chain_forward(chain_root(x, row.unit), 3))


@pytest.mark.isolated
def test_a_used_up_unit_falls_back_to_smaller_ones(card, project, world: World) -> None:
    customer = new_customer(card, project, world, counts=(10, 10, 10, 30, 1))
    vendor = world.vendor("fallback")
    token, _ = customer.pay(vendor, 10_000)
    assert [(r.unit, r.count) for r in token.rows] == [(4, 1)]
    token, _ = customer.pay(vendor, 20_430)  # no 10,000 left: 20 × 1,000 + 4 × 100 + 3 × 10
    assert [(r.unit, r.count) for r in token.rows] == [(3, 20), (2, 4), (1, 3)]
    token, _ = customer.pay(vendor, 9_000)  # 1,000s: 9 left of 30 after 20 … then 100s
    assert [(r.unit, r.count) for r in token.rows] == [(3, 29)]
    token, _ = customer.pay(vendor, 1_500)  # one 1,000 left, then 5 × 100
    assert [(r.unit, r.count) for r in token.rows] == [(3, 30), (2, 9)]
    assert customer.card.status().available == (10, 7, 1, 0, 0)


@pytest.mark.isolated
def test_impossible_amounts_are_refused_and_change_nothing(card, project, world: World) -> None:
    customer = new_customer(card, project, world, counts=(5, 200, 0, 0, 1))
    vendor = world.vendor("refusals")
    status = customer.card.status()
    for amount in (10_000 + 2_000 + 6,  # more than is left: 6 units of 1 needed, 5 there
                   10_000 + 1_000 + 5,  # 100 units of 10 in one payment: above the per-payment bound
                   20_000):  # past the range
        with pytest.raises(StatusError) as refused:
            customer.card.pay(amount, new_reference(), vendor.public_point)
        assert refused.value.sw == 0x6985, amount
    assert customer.card.status() == status
    token, _ = customer.pay(vendor, 10_995)
    assert [(r.unit, r.count) for r in token.rows] == [(4, 1), (1, 99), (0, 5)]


@pytest.mark.isolated
def test_the_card_refuses_spending_past_its_range(card, project, world: World) -> None:
    customer = new_customer(card, project, world, counts=(0, 0, 0, 0, 2))
    vendor = world.vendor("past-range")
    customer.pay(vendor, 10_000)
    customer.pay(world.vendor("past-range-2"), 10_000)
    with pytest.raises(StatusError) as refused:
        customer.card.pay(10_000, new_reference(), vendor.public_point)
    assert refused.value.sw == 0x6985
    assert customer.card.status().spent == (0, 0, 0, 0, 2)


# ---------------------------------------------------------------- range certificates


def _range(world: World, pid: bytes, sn: int, counts=(1, 1, 1, 1, 1), key=None) -> RangeCertificate:
    body = RangeBody(counts, pid, sn)
    return RangeCertificate(body, sign(key or world.broker._sig, body.encode()))


def test_range_certificates_are_checked(purse: Customer, world: World) -> None:
    card, pid = purse.card, purse.ca_cert.pid
    status = card.status()
    good = world.broker.buy(purse.ca_cert, (1, 2, 3, 4, 5))
    tampered = RangeCertificate(RangeBody((1, 2, 3, 4, 50), pid, good.body.sn), good.signature)
    stranger = _range(world, pid, good.body.sn, key=new_private_key())
    other_pid = _range(world, b"ABCDEFGH", good.body.sn + 10)
    cases = [(tampered, 0x6982), (stranger, 0x6982), (other_pid, 0x6A80),
             (RangeCertificate(good.body, good.signature[:-3]), 0x6982),
             (RangeCertificate(good.body, b"\x30\x02\x01\x01"), 0x6982),
             (_range(world, pid, status.last_sn), 0x6985)]  # an SN loaded before
    for cert, sw in cases:
        assert status_word(purse.wallet, EcashCard.load_range_command(cert)) == sw, cert
    assert card.status() == status
    card.load_range(good)
    assert status_word(purse.wallet, EcashCard.load_range_command(good)) == 0x6985  # the same certificate twice
    after = card.status()
    assert after.last_sn == good.body.sn
    assert [a - b for a, b in zip(after.limits, status.limits, strict=True)] == [1, 2, 3, 4, 5]
    purse.ranges.append(good)
    assert status_word(purse.wallet, CommandAPDU(0x80, 0x3A, 0, 0, bytes(32))) == 0x6700


# ---------------------------------------------------------------- refusals


def test_pay_refusals_have_exact_status_words(purse: Customer, world: World) -> None:
    point = world.vendor("bakery").public_point
    status = purse.card.status()
    good = EcashCard.pay_command(10, new_reference(), point)
    not_on_curve = b"\x04" + bytes(range(64))
    cases = [
        (CommandAPDU(0x80, 0x56, 0, 0, bytes(4) + good.data[4:], le=256), 0x6A80),  # amount 0
        (CommandAPDU(0x80, 0x56, 0, 0, good.data[:12] + b"\x02" + point[1:], le=256), 0x6A80),  # not uncompressed
        (CommandAPDU(0x80, 0x56, 0, 0, good.data[:12] + not_on_curve, le=256), 0x6A80),  # not on the curve
        (CommandAPDU(0x80, 0x56, 0, 0, good.data[:-1], le=256), 0x6700),
        (CommandAPDU(0x80, 0x56, 1, 0, good.data, le=256), 0x6A86),
        (CommandAPDU(0x84, 0x56, 0, 0, good.data), 0x6982),  # CLA 84 without a session
        (CommandAPDU(0x00, 0x56, 0, 0, good.data), 0x6E00),
        (CommandAPDU(0x80, 0x5A, 9, 0, le=256), 0x6A86),
        (CommandAPDU(0x80, 0x5A, 8, 0, le=256), 0x6A88),  # a slot not used yet
    ]
    for command, sw in cases:
        assert status_word(purse.wallet, command) == sw, command
    assert purse.card.status() == status
    purse.wallet.select()  # PIN no longer verified
    assert status_word(purse.wallet, good) == 0x6982
    assert status_word(purse.wallet, CommandAPDU(0x80, 0x5A, 0, 0, le=256)) == 0x6982
    assert status_word(purse.wallet, CommandAPDU(0x80, 0x58, 0, 0, le=256)) == 0x6982


def test_personalise_once_through_the_issuer_session_only(purse: Customer, world: World) -> None:
    keys = world.broker.signature_point + world.broker.dh_point
    assert status_word(purse.wallet, CommandAPDU(0x80, INS_ECASH_PERSONALISE, 0, 0, keys)) == 0x6982  # CLA 80: no SM
    purse.wallet.open_issuer_session(purse.issuer)
    with pytest.raises(StatusError) as again:
        EcashCard(purse.wallet).personalise(world.broker.signature_point, world.broker.dh_point)
    assert again.value.sw == 0x6985
    with pytest.raises(StatusError) as short:
        purse.wallet.secure(INS_ECASH_PERSONALISE, data=keys[:-1])
    assert short.value.sw == 0x6700


@pytest.mark.isolated
def test_a_fresh_purse_refuses_everything_but_personalisation(card, project, world: World) -> None:
    wallet, issuer = issue_wallet(card, project)
    wallet.select()
    wallet.verify_pin(PIN)
    purse = EcashCard(wallet)
    point = world.vendor("bakery").public_point
    for command in (CommandAPDU(0x80, 0x4A, le=65), EcashCard.pay_command(10, new_reference(), point),
                    CommandAPDU(0x80, 0x3A, 0, 0, bytes(40))):
        assert card.transmit(command).sw == 0x6985, command
    assert card.transmit(CommandAPDU(0x80, 0x58, le=256)).sw == 0x6A88  # no token yet
    assert purse.status().state == PurseState.NONE
    wallet.open_issuer_session(issuer)
    with pytest.raises(StatusError) as bad_point:
        purse.personalise(world.broker.signature_point, b"\x04" + bytes(64))
    assert bad_point.value.sw == 0x6A80
    wallet.open_issuer_session(issuer)
    purse.personalise(world.broker.signature_point, world.broker.dh_point)
    wallet.verify_pin(PIN)
    assert purse.status().state == PurseState.READY
    assert card.transmit(EcashCard.pay_command(10, new_reference(), point)).sw == 0x6985  # no range yet
    wallet.open_issuer_session(issuer)
    wallet.terminate()
    for command in (CommandAPDU(0x80, 0x4A, le=65), EcashCard.pay_command(10, new_reference(), point)):
        assert card.transmit(command).sw == 0x6985


@pytest.mark.isolated
def test_vendor_slots_are_bounded(card, project, world: World) -> None:
    customer = new_customer(card, project, world, counts=(100, 0, 0, 0, 0))
    vendors = [world.vendor(f"slot-{i}") for i in range(8)]
    for vendor in vendors:
        customer.pay(vendor, 1)
    with pytest.raises(StatusError) as full:
        customer.card.pay(1, new_reference(), world.vendor("slot-8").public_point)
    assert full.value.sw == 0x6A84
    customer.pay(vendors[3], 2)  # known vendors still work
    slots = customer.card.vendor_slots()
    assert [s.vendor_id for s in slots] == [v.vendor_id for v in vendors]
    assert slots[3].counts == (3, 0, 0, 0, 0)


def test_personalise_is_masked_in_traces(purse: Customer, world: World) -> None:
    trace = Trace()
    purse.wallet.transport.trace = trace
    purse.wallet.select()
    purse.wallet.open_issuer_session(purse.issuer)
    with pytest.raises(StatusError):
        EcashCard(purse.wallet).personalise(world.broker.signature_point, world.broker.dh_point)
    assert "masked: wallet ECASH PERSONALISE" in trace.format()


def test_last_token_survives_reselection(purse: Customer, world: World) -> None:
    token, _ = purse.pay(world.vendor("bakery"), 42)
    purse.reselect()
    assert purse.card.last_token() == token


def test_wallet_balance_is_untouched_by_ecash(purse: Customer, world: World) -> None:
    wallet: WalletClient = purse.wallet
    balance = wallet.get_balance()
    purse.pay(world.vendor("bakery"), 3)
    assert wallet.get_balance() == balance
    assert SEED_COUNTS[0] >= purse.card.status().spent[0]


_ECASH_INS = [0x38, 0x3A, 0x4A, 0x56, 0x58, 0x5A]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=st.lists(st.builds(CommandAPDU, cla=st.sampled_from([0x00, 0x80, 0x84]),
                                   ins=st.sampled_from(_ECASH_INS), p1=st.sampled_from([0, 1, 8, 9, 0xFF]),
                                   p2=st.sampled_from([0, 1]), data=st.binary(max_size=120),
                                   le=st.one_of(st.none(), st.integers(1, 256))), max_size=6))
def test_random_ecash_apdus_never_get_6f00_nor_move_the_purse(purse: Customer, commands) -> None:
    before = purse.card.status()
    for command in commands:
        assert purse.wallet.transport.exchange(command).sw != 0x6F00, command
    purse.reselect()
    assert purse.card.status() == before
