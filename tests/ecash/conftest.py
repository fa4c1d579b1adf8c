"""Fixtures of the e-cash tests: a throw-away world (CA, broker, store) and a customer's purse reselected.

Each module keeps its own `customer` (module scope, on the module's card, with the counts it needs);
`purse` hands it to a test with the wallet selected and the PIN verified."""

from __future__ import annotations

import pytest
from cardsuite.transport.base import Transport
from support.ecashkit import Customer, World


@pytest.fixture
def world(tmp_path) -> World:
    return World.create(tmp_path / "roles.db")


@pytest.fixture
def purse(card: Transport, customer: Customer) -> Customer:
    customer.reselect()
    return customer
