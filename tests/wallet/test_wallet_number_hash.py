"""H(R-Card) has one definition, the issuer's keyed hash (``IssuerSecret.number_hash``), whichever path
personalised the card: ``Personalisation.for_card`` (the e-cash story, benches, tests) and ``Issuer.issue``.
The hash travels in every PAY answer, so a plain SHA-256 of the number would give the card number to anyone
who sees one payment and enumerates the few digits they do not know."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import pytest
from cardsuite.wallet.card import Limits, Personalisation, WalletClient, manifest_transport_keys
from cardsuite.wallet.cardnumber import CardNumber, luhn_check_digit
from cardsuite.wallet.issuer import Issuer, IssuerSecret, load_transport_keys
from cardsuite.wallet.sm import IssuerKeys
from cardsuite.wallet.store import WalletStore
from support import PIN, PUK, ecashkit

LIMITS = Limits(max_balance=100_000, max_payment=50_000, step_up=50_000)
SECRET = IssuerSecret.generate("number hash test")


def _enumerate(number: str, observed: bytes) -> list[str]:
    """What an attacker who knows the IIN and all but three account digits finds by hashing every candidate."""
    prefix = number[:-4]
    candidates = [prefix + f"{n:03d}" + str(luhn_check_digit(prefix + f"{n:03d}")) for n in range(1000)]
    assert number in candidates
    return [c for c in candidates if hashlib.sha256(c.encode()).digest() == observed]


def _paid_hash(client: WalletClient, keys: IssuerKeys, pin: str = PIN) -> bytes:
    """H(R-Card) as the card gives it to any merchant: the tail of a PAY answer."""
    client.select()  # issuance ended its flow with a reset
    client.open_issuer_session(keys)
    client.credit(1_000)
    client.select()
    client.verify_pin(pin)
    return client.pay(100, b"SHOP0001", bytes(32)).h_rcard


def _by_for_card(client: WalletClient, project) -> tuple[CardNumber, bytes]:
    number, keys = CardNumber("4111111111111111"), IssuerKeys.generate()
    client.provision(manifest_transport_keys(project.manifest),
                     Personalisation.for_card(number, secret=SECRET, holder=b"for_card", limits=LIMITS, pin=PIN,
                                              puk=PUK, keys=keys))
    return number, _paid_hash(client, keys)


def _by_issuer(client: WalletClient, project, tmp_path) -> tuple[CardNumber, bytes]:
    registry = WalletStore(tmp_path / "issuer.db")
    try:
        issuer = Issuer(registry, SECRET)
        issued = issuer.issue(client, load_transport_keys(project.manifest, environ={}, dev=True),
                              holder="Issuer path", limits=LIMITS, pin=PIN, puk=PUK)
        return issued.number, _paid_hash(client, issuer.card_keys(registry.card(issued.card_id)))
    finally:
        registry.close()


def _by_ecash_kit(client: WalletClient, project) -> tuple[CardNumber, bytes]:
    kit_client, keys = ecashkit.issue_wallet(client.transport, project)
    return CardNumber("4111111111111111"), _paid_hash(kit_client, keys, ecashkit.PIN)


@pytest.fixture
def fresh(card_factory) -> Iterator[Callable[[], WalletClient]]:
    opened = []

    def open_one() -> WalletClient:
        transport = card_factory.open()
        opened.append(transport)
        return WalletClient(transport)

    yield open_one
    for transport in opened:
        card_factory.close(transport)


@pytest.mark.parametrize("path", ["for_card", "issuer", "ecash kit"])
def test_every_personalisation_path_loads_the_keyed_hash(path: str, fresh, project, tmp_path) -> None:
    client = fresh()
    if path == "for_card":
        number, observed = _by_for_card(client, project)
        expected = SECRET.number_hash(number)
    elif path == "issuer":
        number, observed = _by_issuer(client, project, tmp_path)
        expected = SECRET.number_hash(number)
    else:
        number, observed = _by_ecash_kit(client, project)
        expected = ecashkit.NUMBER_SECRET.number_hash(number)
    assert observed == expected
    assert observed != hashlib.sha256(number.digits.encode()).digest()
    # the enumeration attack on the hash every merchant sees finds nothing
    assert _enumerate(number.digits, observed) == []
    # (and it would find the number at once if the card carried the plain hash)
    assert _enumerate(number.digits, hashlib.sha256(number.digits.encode()).digest()) == [number.digits]


def test_the_hash_is_keyed_by_the_issuer_secret() -> None:
    number = CardNumber("4111111111111111")
    other = IssuerSecret.generate("another issuer")
    assert SECRET.number_hash(number) != other.number_hash(number)
    assert SECRET.number_hash(number) == SECRET.number_hash(CardNumber.parse("4111 1111 1111 1111"))


def test_for_card_needs_the_issuer_secret() -> None:
    with pytest.raises(TypeError):
        Personalisation.for_card("4111111111111111", holder=b"x", limits=LIMITS, pin=PIN, puk=PUK,  # type: ignore
                                 keys=IssuerKeys.generate())
