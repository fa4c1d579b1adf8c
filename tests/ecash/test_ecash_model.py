"""Amount decomposition (hypothesis): the split always makes the amount, never exceeds what is left or the
per-payment bound, is found whenever any split exists, and the card splits exactly as the model does;
messages round-trip."""

from __future__ import annotations

from functools import cache

import pytest
from cardsuite.apdu import StatusError
from cardsuite.ecash.primitives import (
    MAX_UNITS_PER_PAYMENT,
    UNITS,
    EcashError,
    RangeBody,
    Token,
    TokenRow,
    counts_for,
    decompose,
    new_reference,
    value_of,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.ecashkit import Customer, World, new_customer


def test_the_papers_example() -> None:
    assert decompose(20_430, [99] * 5) == (0, 3, 4, 0, 2)  # 2 × 10,000 + 4 × 100 + 3 × 10


def _exists(amount: int, caps: tuple[int, ...]) -> bool:
    """Brute force: is there any split of amount within caps?"""
    @cache
    def can(rest: int, e: int) -> bool:
        if e < 0:
            return rest == 0
        return any(can(rest - n * UNITS[e], e - 1) for n in range(min(caps[e], rest // UNITS[e]) + 1))
    return can(amount, len(UNITS) - 1)


_available = st.tuples(*[st.integers(0, 30) for _ in UNITS])


@settings(max_examples=300, deadline=None)
@given(amount=st.integers(1, 120_000), available=_available)
def test_decomposition_is_exact_bounded_and_complete(amount: int, available: tuple[int, ...]) -> None:
    split = decompose(amount, available, cap=25)
    caps = tuple(min(a, 25) for a in available)
    if split is None:
        assert not _exists(amount, caps)
    else:
        assert value_of(split) == amount
        assert all(0 <= n <= c for n, c in zip(split, caps, strict=True))


@given(amount=st.integers(1, 1_099_989))
def test_with_plenty_left_every_amount_up_to_the_bound_is_payable(amount: int) -> None:
    split = decompose(amount, [10**6] * 5)
    assert split is not None and value_of(split) == amount and max(split) <= MAX_UNITS_PER_PAYMENT


@given(amount=st.integers(1, 10**7))
def test_the_brokers_default_split_keeps_the_value(amount: int) -> None:
    assert value_of(counts_for(amount)) == amount


def test_non_positive_amounts_are_refused() -> None:
    with pytest.raises(EcashError):
        decompose(0, [1] * 5)


@given(counts=st.tuples(*[st.integers(0, 2**32 - 1) for _ in UNITS]), pid=st.binary(min_size=8, max_size=8),
       sn=st.integers(1, 2**32 - 1))
def test_range_bodies_round_trip(counts, pid, sn) -> None:
    body = RangeBody(counts, pid, sn)
    assert RangeBody.parse(body.encode()) == body


def test_tokens_round_trip_and_reject_bad_lengths() -> None:
    token = Token(b"P" * 8, b"V" * 8, b"R" * 8, 20_430, (TokenRow(4, 2, bytes(32)), TokenRow(1, 3, bytes(32))),
                  bytes(range(32)))
    assert Token.parse(token.encode()) == token
    with pytest.raises(EcashError):
        Token.parse(token.encode()[:-1])


# ---------------------------------------------------------------- the card against the model


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World.create(tmp_path_factory.mktemp("ecash-model") / "roles.db")


@pytest.fixture(scope="module")
def customer(module_card, project, world) -> Customer:
    return new_customer(module_card, project, world, counts=(400, 150, 120, 60, 6))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=st.integers(1, 150_000), which=st.integers(0, 2))
def test_the_card_splits_as_the_model_does(card, customer: Customer, world: World, amount: int, which: int) -> None:
    customer.reselect()
    before = customer.card.status()
    expected = decompose(amount, before.available)
    vendor = world.vendor(f"model-{which}")
    if expected is None:
        with pytest.raises(StatusError) as refused:
            customer.card.pay(amount, new_reference(), vendor.public_point)
        assert refused.value.sw == 0x6985
        assert customer.card.status() == before
        return
    token, receipt = customer.pay(vendor, amount)
    after = customer.card.status()
    assert tuple(a - b for a, b in zip(after.spent, before.spent, strict=True)) == expected
    assert sorted(row.unit for row in token.rows) == [e for e in range(len(UNITS)) if expected[e]]
    assert receipt.amount == amount
