"""PAY ([P001]) and the transaction log: the signature over σ verifies with this card's PKC, any change
to σ breaks it, limits and step-up hold, balance, counter and log move together, the log is a ring with
the newest record first, and the real card number never appears in an APDU or a trace."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.trace import Trace
from cardsuite.wallet.card import (
    Limits,
    LogType,
    Payment,
    Personalisation,
    Sigma,
    WalletClient,
    encode_iin,
    manifest_transport_keys,
    v_card,
)
from cardsuite.wallet.cardnumber import CardNumber
from cardsuite.wallet.sm import IssuerKeys
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from support import NUMBER_SECRET, PIN, status_word

CARD_NUMBER = "9410123456789010"  # Luhn-valid, IIN 941012
ISSUER = IssuerKeys.generate()
LIMITS = Limits(max_balance=500_000, max_payment=100_000, step_up=30_000)
MERCHANT = b"SHOP0001"
ITEM = hashlib.sha256(b"1 x Americano, 4,500 won").digest()


def _perso(keys: IssuerKeys = ISSUER) -> Personalisation:
    return Personalisation.for_card(CARD_NUMBER, secret=NUMBER_SECRET,
                                    holder="홍길동".encode(), limits=LIMITS, pin=PIN, puk="13572468", keys=keys)


@pytest.fixture(scope="module")
def pkc(module_card, project) -> ec.EllipticCurvePublicKey:
    client = WalletClient(module_card)
    encoded = client.provision(manifest_transport_keys(project.manifest), _perso())
    client.open_issuer_session(ISSUER)
    client.credit(300_000)
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), encoded)


@pytest.fixture
def wallet(card, pkc) -> WalletClient:
    client = WalletClient(card)
    client.select()
    client.verify_pin(PIN)
    return client


def _state(wallet: WalletClient) -> tuple[int, int, list]:
    return wallet.get_balance(), wallet.status().counter, wallet.read_log()


@pytest.mark.e2e
def test_payment_is_signed_debited_counted_and_logged(wallet: WalletClient, pkc) -> None:
    balance, counter, log = _state(wallet)
    payment = wallet.pay(4_500, MERCHANT, ITEM, ts_m=1_750_000_000_123)
    assert payment.verify(pkc)
    sigma = payment.sigma
    assert (sigma.amount, sigma.merchant_id, sigma.item, sigma.ts_m) == (4_500, MERCHANT, ITEM, 1_750_000_000_123)
    assert (sigma.holder, sigma.iin, sigma.counter) == ("홍길동".encode(), "941012", counter + 1)
    assert payment.h_rcard == NUMBER_SECRET.number_hash(CardNumber(CARD_NUMBER))
    assert wallet.get_balance() == balance - 4_500
    assert wallet.status().counter == counter + 1
    newest = wallet.read_log()
    assert len(newest) == min(len(log) + 1, 10)
    record = newest[0]
    assert (record.counter, record.type, record.amount, record.balance) == (counter + 1, LogType.PAYMENT, 4_500,
                                                                           balance - 4_500)
    assert (record.ts_m, record.merchant_id) == (1_750_000_000_123, MERCHANT)


def test_issuer_recognises_the_card_by_v_card(wallet: WalletClient, pkc) -> None:
    """The issuer stored V-Card = H(PKC ‖ H(R-Card)) at issuance; a payment gives it PKC's signature and
    H(R-Card), from which it recomputes V-Card without ever seeing the card number."""
    from cryptography.hazmat.primitives import serialization

    encoded = pkc.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    stored = v_card(encoded, NUMBER_SECRET.number_hash(CardNumber(CARD_NUMBER)))
    payment = wallet.pay(100, MERCHANT, ITEM)
    assert payment.verify(pkc) and v_card(wallet.get_public_key(), payment.h_rcard) == stored


@pytest.mark.parametrize("field, value", [("amount", 1), ("item", b"other item"), ("merchant_id", b"THIEF001"),
                                          ("counter", 1), ("ts_m", 0)])
def test_any_change_to_sigma_breaks_the_signature(wallet: WalletClient, pkc, field: str, value) -> None:
    payment = wallet.pay(1_000, MERCHANT, ITEM)
    s = payment.sigma
    fields = {"ts_m": s.ts_m, "item": s.item, "amount": s.amount, "merchant_id": s.merchant_id,
              "counter": s.counter}
    fields[field] = value
    raw = (fields["ts_m"].to_bytes(8, "big") + bytes((len(s.holder),)) + s.holder + bytes((len(fields["item"]),))
           + fields["item"] + encode_iin(s.iin) + fields["amount"].to_bytes(4, "big") + fields["merchant_id"]
           + fields["counter"].to_bytes(4, "big"))
    forged = replace(payment, sigma=Sigma.parse(raw))
    assert not forged.verify(pkc)


def test_signature_belongs_to_this_card(wallet: WalletClient) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert not wallet.pay(10, MERCHANT, ITEM).verify(other)


def test_signatures_use_fresh_nonces(wallet: WalletClient) -> None:
    """Two ECDSA signatures must not share r (a repeated nonce gives the private key away). Plain jCardSim
    signs with an unseeded generator; the simulator bridge replaces it with a real random source."""
    first, second = wallet.pay(10, MERCHANT, ITEM), wallet.pay(10, MERCHANT, ITEM)
    assert decode_dss_signature(first.signature)[0] != decode_dss_signature(second.signature)[0]


@pytest.mark.isolated
def test_every_card_generates_its_own_key_pair(card, pkc, project) -> None:
    """A second card (this test's own) must not come up with the module card's key pair."""
    other = WalletClient(card).provision(manifest_transport_keys(project.manifest), _perso())
    assert ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), other) != pkc


@pytest.mark.parametrize("amount, sw", [(0, 0x6A80), (LIMITS.max_payment + 1, 0x6A80)])
def test_amount_outside_the_limits(wallet: WalletClient, amount: int, sw: int) -> None:
    before = _state(wallet)
    wallet.verify_pin(PIN)  # step-up satisfied: only the limit can refuse
    assert status_word(wallet, WalletClient.pay_command(amount, MERCHANT, ITEM, 1)) == sw
    assert _state(wallet) == before


@pytest.mark.isolated
def test_balance_cannot_go_negative(card, project) -> None:
    client = WalletClient(card)
    client.provision(manifest_transport_keys(project.manifest), _perso())
    client.open_issuer_session(ISSUER)
    client.credit(500)
    client.verify_pin(PIN)
    assert status_word(client, WalletClient.pay_command(501, MERCHANT, ITEM, 1)) == 0x6985
    assert client.get_balance() == 500
    client.pay(500, MERCHANT, ITEM)
    assert client.get_balance() == 0


def test_step_up_needs_a_verification_immediately_before(wallet: WalletClient, pkc) -> None:
    large = LIMITS.step_up + 1
    balance = wallet.get_balance()  # the verification is no longer "immediately before"
    assert status_word(wallet, WalletClient.pay_command(large, MERCHANT, ITEM, 1)) == 0x6982
    wallet.verify_pin(PIN)
    assert wallet.pay(large, MERCHANT, ITEM).verify(pkc)
    # used up by that payment
    assert status_word(wallet, WalletClient.pay_command(large, MERCHANT, ITEM, 1)) == 0x6982
    # at the threshold itself no step-up is needed
    wallet.pay(LIMITS.step_up, MERCHANT, ITEM)
    assert wallet.get_balance() == balance - large - LIMITS.step_up


def test_pay_needs_the_pin(wallet: WalletClient) -> None:
    wallet.select()
    assert status_word(wallet, WalletClient.pay_command(10, MERCHANT, ITEM, 1)) == 0x6982


@pytest.mark.parametrize("data, sw", [
    (bytes(21), 0x6700),  # no item info
    ((10).to_bytes(4, "big") + bytes(16) + b"\x05abc", 0x6A80),  # Li says 5, 3 follow
    ((10).to_bytes(4, "big") + bytes(16) + b"\x21" + bytes(33), 0x6700),  # item info too long
])
def test_malformed_pay(wallet: WalletClient, data: bytes, sw: int) -> None:
    counter = wallet.status().counter
    assert status_word(wallet, CommandAPDU(0x80, 0x54, 0, 0, data, le=256)) == sw
    assert wallet.status().counter == counter


def test_log_is_a_ring_newest_first(wallet: WalletClient) -> None:
    counter = wallet.status().counter
    for n in range(1, 13):
        wallet.pay(n, MERCHANT, ITEM, ts_m=n)
    log = wallet.read_log()
    assert len(log) == 10  # the two oldest of these twelve (and everything before) are overwritten
    assert [r.amount for r in log] == list(range(12, 2, -1))
    assert [r.counter for r in log] == list(range(counter + 12, counter + 2, -1))
    assert all(newer.balance + newer.amount == older.balance for newer, older in zip(log, log[1:], strict=False))


def test_read_record(wallet: WalletClient) -> None:
    wallet.pay(1, MERCHANT, ITEM)
    assert status_word(wallet, CommandAPDU(0x00, 0xB2, 1, 0x04, le=29)) == 0x9000  # current EF
    assert wallet.transport.exchange(CommandAPDU(0x00, 0xB2, 1, 0x0C, le=10)).sw == 0x6C1D  # Le: the record size
    assert status_word(wallet, CommandAPDU(0x00, 0xB2, 0, 0x0C, le=29)) == 0x6A83
    assert status_word(wallet, CommandAPDU(0x00, 0xB2, 11, 0x0C, le=29)) == 0x6A83
    assert status_word(wallet, CommandAPDU(0x00, 0xB2, 1, 0x14, le=29)) == 0x6A82  # SFI 2: no such file
    assert status_word(wallet, CommandAPDU(0x00, 0xB2, 1, 0x0D, le=29)) == 0x6A86
    wallet.select()
    assert status_word(wallet, CommandAPDU(0x00, 0xB2, 1, 0x0C, le=29)) == 0x6982  # PIN first


@pytest.mark.isolated
@pytest.mark.e2e
def test_card_number_never_appears_in_apdus_or_traces(card, project) -> None:
    """From a fresh card to payments and log reads: neither the card number (digits, ASCII hex, BCD)
    nor the PIN, PUK or keys appear in the trace."""
    seen: list[str] = []
    card.trace = Trace(limit=10_000, sinks=[lambda entry: seen.append(entry.format())])
    keys = IssuerKeys.generate()
    perso = _perso(keys)
    client = WalletClient(card)
    client.provision(manifest_transport_keys(project.manifest), perso)
    client.open_issuer_session(keys)
    client.credit(10_000)
    client.verify_pin(PIN)
    payment: Payment = client.pay(1_000, MERCHANT, ITEM)
    client.read_log()
    text = "\n".join(seen).replace(" ", "").upper()
    secrets = {
        "card number digits": CARD_NUMBER,
        "card number ASCII": CARD_NUMBER.encode().hex().upper(),
        "card number BCD": CARD_NUMBER,  # packed BCD prints as the digits
        "PIN block": (PIN.encode() + b"\xff" * 4).hex().upper(),
        "PUK": b"13572468".hex().upper(),
        "K_E": keys.enc.hex().upper(),
        "K_A": keys.mac.hex().upper(),
    }
    for what, value in secrets.items():
        assert value not in text, f"{what} appears in the trace"
    assert payment.h_rcard.hex().upper() in text  # the hash does travel, by design


@pytest.mark.sim_only
def test_a_payment_signs_once_and_hashes_nothing_else(wallet: WalletClient, card) -> None:
    """The bridge counts the applet's crypto calls: PAY signs σ exactly once (ECDSA-SHA256 hashes inside
    the signature) and computes no digest of its own; GET BALANCE does no crypto at all."""
    wallet.pay(10, MERCHANT, ITEM)
    assert card.operation_count("Signature.sign") == 1
    assert card.operation_count("MessageDigest.doFinal") == 0
    wallet.get_balance()
    assert card.operation_count("Signature.sign") == 0
