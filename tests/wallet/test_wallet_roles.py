"""The host roles of [P001] and [P002] against a real wallet card: the issuer (personalisation, enrolment,
authorisation by V-Card), the merchant/PG (TS_M, signature with PKC, V-Card, evidence), each requirement
shown by the attack it must stop. The issuer and merchant records live in a real SQLite file.

[P001]: (1) confidentiality of the card number, (2) integrity, (3) non-repudiation, (4) freshness,
(5) one-wayness of V-Card, (6) no reuse of a captured V-Card or payment.
[P002]: enrolment apart from authentication, the binding re-checked at every use, step-up.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from cardsuite.apdu import StatusError
from cardsuite.wallet.card import (
    Limits,
    Payment,
    Personalisation,
    Sigma,
    WalletClient,
    WalletLifeCycle,
    encode_iin,
    v_card,
)
from cardsuite.wallet.cardnumber import CardNumber, luhn_check_digit
from cardsuite.wallet.issuer import (
    AuthorisationRequest,
    DenyReason,
    Issuer,
    IssuerError,
    IssuerSecret,
    load_transport_keys,
)
from cardsuite.wallet.merchant import (
    CardPayment,
    EvidenceError,
    Merchant,
    PaymentRefused,
    PaymentRequest,
    Refusal,
    pay_with_card,
    verify_evidence,
)
from cardsuite.wallet.store import SCHEMA_VERSION, WalletStore
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support import PIN, PUK

LIMITS = Limits(max_balance=5_000_000, max_payment=200_000, step_up=30_000)
SECRET = IssuerSecret(bytes.fromhex("5a" * 32), "test secret")


class Clock:
    """The merchant's clock in milliseconds; tests move it to make a TS_M stale."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset


class Roles:
    """One issuer and one merchant on one database file, and the module's enrolled card."""

    def __init__(self, registry: WalletStore, transport_keys) -> None:
        self.registry = registry
        self.issuer = Issuer(registry, SECRET)
        self.clock = Clock()
        self.merchant = Merchant(registry, "SHOP0001", {self.issuer.iin: self.issuer}, window_ms=60_000,
                                 clock=self.clock)
        self.transport_keys = transport_keys

    def issue(self, client: WalletClient, holder: str = "홍길동", account_id: int | None = None, enrol: bool = True):
        issued = self.issuer.issue(client, self.transport_keys, holder=holder, limits=LIMITS, pin=PIN, puk=PUK,
                                   account_id=account_id)
        if enrol:
            self.issuer.enrol(client, issued.account_id, evidence="resident card checked at branch 7", pin=PIN)
            self.issuer.credit(client, issued.account_id, 1_000_000)
        return issued

    def answer(self, client: WalletClient, amount: int = 4_500, item: str = "1 x Americano") -> CardPayment:
        return pay_with_card(client, self.merchant.request_payment(amount, item), PIN)


@pytest.fixture(scope="module")
def roles(tmp_path_factory, project) -> Iterator[Roles]:
    registry = WalletStore(tmp_path_factory.mktemp("wallet") / "issuer-merchant.db")
    yield Roles(registry, load_transport_keys(project.manifest, environ={}, dev=True))
    registry.close()


@pytest.fixture(scope="module")
def issued(roles: Roles, module_card):
    return roles.issue(WalletClient(module_card))


@pytest.fixture
def holder(card, issued) -> WalletClient:
    return WalletClient(card)


@pytest.fixture
def extra_card(card_factory):
    """Another card of the configured kind, opened inside the test (at most one beside the module's)."""

    @contextmanager
    def opened() -> Iterator[WalletClient]:
        transport = card_factory.open()
        try:
            yield WalletClient(transport)
        finally:
            card_factory.close(transport)

    return opened


def _refusal(roles: Roles, answer: CardPayment) -> PaymentRefused:
    with pytest.raises(PaymentRefused) as caught:
        roles.merchant.complete(answer)
    return caught.value


def _sigma(sigma: Sigma, **changes) -> Sigma:
    """σ with some fields changed, encoded as the card encodes it."""
    f = {"ts_m": sigma.ts_m, "holder": sigma.holder, "item": sigma.item, "iin": sigma.iin, "amount": sigma.amount,
         "merchant_id": sigma.merchant_id, "counter": sigma.counter, **changes}
    raw = (f["ts_m"].to_bytes(8, "big") + bytes((len(f["holder"]),)) + f["holder"] + bytes((len(f["item"]),))
           + f["item"] + encode_iin(f["iin"]) + f["amount"].to_bytes(4, "big") + f["merchant_id"]
           + f["counter"].to_bytes(4, "big"))
    return Sigma.parse(raw)


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _forge(sigma: Sigma, h_rcard: bytes) -> tuple[CardPayment, ec.EllipticCurvePrivateKey]:
    """An attacker's payment: σ signed with the attacker's own key, presented with the attacker's PKC."""
    key = ec.generate_private_key(ec.SECP256R1())
    signature = key.sign(sigma.raw, ec.ECDSA(hashes.SHA256()))
    return CardPayment(Payment(sigma, signature, h_rcard), _point(key.public_key())), key


# ---------------------------------------------------------------- the flow


@pytest.mark.e2e
def test_a_payment_is_requested_signed_verified_authorised_and_kept(roles: Roles, holder: WalletClient,
                                                                    issued) -> None:
    answer = roles.answer(holder, 4_500)
    receipt = roles.merchant.complete(answer)
    assert (receipt.amount, receipt.iin, receipt.merchant_id) == (4_500, roles.issuer.iin, b"SHOP0001")
    assert receipt.counter == answer.payment.sigma.counter
    card = roles.registry.card(issued.card_id)
    assert card is not None and card.last_counter == receipt.counter
    assert roles.registry.request(b"SHOP0001", receipt.ts_m).state == "approved"  # type: ignore[union-attr]
    assert roles.registry.authorisations(issued.card_id)[-1][2] is True


# ---------------------------------------------------------------- [P001] (1) confidentiality


@pytest.mark.isolated
@pytest.mark.e2e
def test_the_card_number_never_appears_in_an_apdu_a_trace_a_log_or_the_database(
        roles: Roles, card, caplog, monkeypatch) -> None:
    """The whole life of a card — issue, enrol, credit, pay — recorded byte for byte: the number appears in
    no command or response in any encoding (ASCII, BCD), nor in the masked trace, the logs or the
    database file; the account digits (everything after the public IIN) never appear either."""
    sent: list[bytes] = []
    original = card.transmit_raw

    def recording(command: bytes) -> bytes:
        response = original(command)
        sent.extend((command, response))
        return response

    monkeypatch.setattr(card, "transmit_raw", recording)
    caplog.set_level(logging.DEBUG, logger="cardsuite")
    client = WalletClient(card)
    issued = roles.issue(client, holder="Kim")
    receipt = roles.merchant.complete(roles.answer(client, 1_000))
    client.select()
    client.verify_pin(PIN)
    client.read_log()

    digits = issued.number.digits
    secret_parts = {digits, digits[6:], digits[6:-1]}  # the number, and its account digits with or without check
    forms = {part.encode() for part in secret_parts} | {bytes.fromhex(p) for p in secret_parts if len(p) % 2 == 0}
    forms |= {bytes.fromhex(p + "F") for p in secret_parts if len(p) % 2}
    plain_hash = hashlib.sha256(digits.encode()).digest()  # the unkeyed hash would let anyone enumerate numbers
    assert len(sent) > 20 and receipt.auth_code
    for apdu in sent:
        for form in forms | {plain_hash}:
            assert form not in apdu
    shown = card.trace.format().replace(" ", "").upper()
    for part in secret_parts:
        assert part not in shown
    for record in caplog.records:
        assert digits not in record.getMessage()
    assert issued.masked in " ".join(r.getMessage() for r in caplog.records)  # the masked form is what is logged
    database = b"".join(path.read_bytes() for path in roles.registry.files())
    for form in forms | {plain_hash}:
        assert form not in database


# ---------------------------------------------------------------- [P001] (2) integrity


@pytest.mark.parametrize("change", [{"amount": 1}, {"amount": 45_000}, {"item": b"1 x Espresso"},
                                    {"merchant_id": b"THIEF001"}])
def test_a_changed_amount_or_item_is_rejected_and_the_genuine_payment_still_goes_through(
        roles: Roles, holder: WalletClient, change: dict) -> None:
    answer = roles.answer(holder, 4_500, "1 x Americano")
    forged = CardPayment(replace(answer.payment, sigma=_sigma(answer.payment.sigma, **change)), answer.pkc)
    assert _refusal(roles, forged).reason in (Refusal.MISMATCH, Refusal.BAD_SIGNATURE, Refusal.UNKNOWN_REQUEST)
    # straight to the issuer, the merchant's checks bypassed: the enrolled PKC does not verify the change
    direct = AuthorisationRequest.for_payment(forged.payment.sigma, answer.payment.signature,
                                              v_card(answer.pkc, answer.payment.h_rcard))
    assert roles.issuer.authorise(direct).reason == DenyReason.BAD_SIGNATURE.value
    # the genuine σ with a request that claims other values than it carries
    genuine = AuthorisationRequest.for_payment(answer.payment.sigma, answer.payment.signature,
                                               v_card(answer.pkc, answer.payment.h_rcard))
    assert roles.issuer.authorise(replace(genuine, amount=1)).reason == DenyReason.MISMATCH.value
    # refusing a forgery does not use up the request: the cardholder's own answer is approved
    assert roles.merchant.complete(answer).amount == 4_500


def _lying(holder: WalletClient, signed: PaymentRequest, **fields) -> CardPayment:
    """The card signs ``signed``; the payer's device presents σ with some parsed fields set otherwise. The
    signature still verifies: it covers ``raw`` only, which stays the card's."""
    genuine = pay_with_card(holder, signed, PIN)
    lying = replace(genuine.payment.sigma, **fields)
    assert lying.raw == genuine.payment.sigma.raw
    answer = CardPayment(replace(genuine.payment, sigma=lying), genuine.pkc)
    # the PKC the card gave inside the payment's flow (the flow ended with a reset)
    assert answer.payment.verify(ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), genuine.pkc))
    return answer


@pytest.mark.parametrize("claimed", ["amount", "merchant_id"])
def test_the_merchant_reads_sigma_from_the_signed_bytes_not_from_the_payers_fields(
        roles: Roles, holder: WalletClient, issued, claimed: str) -> None:
    """The card pays 100 (or another merchant) and the fields claim the 4,500 this merchant asked for: the
    merchant parses σ itself, refuses before asking the issuer, and the request stays open."""
    request = roles.merchant.request_payment(4_500, "1 x Americano")
    signed = replace(request, amount=100) if claimed == "amount" else replace(request, merchant_id=b"THIEF001")
    answer = _lying(holder, signed, amount=4_500, merchant_id=b"SHOP0001")
    asked = len(roles.registry.authorisations(issued.card_id))
    assert _refusal(roles, answer).reason in (Refusal.MISMATCH, Refusal.UNKNOWN_REQUEST)
    assert len(roles.registry.authorisations(issued.card_id)) == asked  # never sent to the issuer
    assert roles.registry.request(b"SHOP0001", request.ts_m).state == "open"  # type: ignore[union-attr]
    assert roles.merchant.complete(pay_with_card(holder, request, PIN)).amount == 4_500  # the genuine answer


def test_fields_naming_another_request_do_not_move_the_payment(roles: Roles, holder: WalletClient) -> None:
    """σ signed for the 100 request, its fields claiming the 4,500 one: the merchant completes what the card
    signed (100, its own TS_M) and leaves the 4,500 request untouched."""
    big = roles.merchant.request_payment(4_500, "1 x Americano")
    small = roles.merchant.request_payment(100, "1 x Americano")
    answer = _lying(holder, small, ts_m=big.ts_m, amount=4_500)
    receipt = roles.merchant.complete(answer)
    assert (receipt.ts_m, receipt.amount) == (small.ts_m, 100)
    assert roles.registry.request(b"SHOP0001", big.ts_m).state == "open"  # type: ignore[union-attr]
    record = roles.registry.evidence(receipt.evidence_id)
    assert record is not None and record.amount == 100 and verify_evidence(record).amount == 100


def test_a_card_signs_what_it_was_asked_so_a_changed_request_is_caught(roles: Roles, holder: WalletClient) -> None:
    """A man in the middle between merchant and card changes the amount the card sees: the card signs the
    changed amount, and the merchant refuses σ because it is not what it requested."""
    request = roles.merchant.request_payment(90_000, "TV")
    answer = pay_with_card(holder, replace(request, amount=900), PIN)
    assert answer.payment.sigma.amount == 900
    assert _refusal(roles, answer).reason == Refusal.MISMATCH


# ---------------------------------------------------------------- [P001] (3) non-repudiation


def test_the_signature_verifies_with_this_cards_pkc_only(roles: Roles, holder: WalletClient, extra_card) -> None:
    with extra_card() as other:
        roles.issue(other, holder="Park")
        other.select()  # the issuer's flows end with the card reset
        other_pkc = other.get_public_key()
    answer = roles.answer(holder)
    for pkc in (other_pkc, _point(ec.generate_private_key(ec.SECP256R1()).public_key())):
        assert _refusal(roles, replace(answer, pkc=pkc)).reason == Refusal.BAD_SIGNATURE
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), answer.pkc)
    assert answer.payment.verify(public_key)
    assert roles.merchant.complete(answer).auth_code


def test_a_state_read_in_the_callers_flow_is_not_read_again_and_is_refused_outside_one(
        roles: Roles, extra_card, monkeypatch: pytest.MonkeyPatch) -> None:
    """issue(selected=…): the caller read the wallet's state in a flow it holds, so the issuer acts on it
    without a second SELECT and GET STATUS (a relayed card: one round trip less); a state read outside a
    flow may be stale (another program's command in between) and is refused before anything is recorded."""
    with extra_card() as client:
        commands: list[bytes] = []
        original = client.transport.transmit_raw
        monkeypatch.setattr(client.transport, "transmit_raw", lambda c: commands.append(c) or original(c))
        cards = len(roles.registry.cards())
        with pytest.raises(IssuerError, match="only valid inside the flow that read it"):
            roles.issuer.issue(client, roles.transport_keys, holder="Lee", limits=LIMITS, pin=PIN, puk=PUK,
                               selected=WalletLifeCycle.INSTALLED)
        assert commands == [] and len(roles.registry.cards()) == cards  # nothing sent, nothing recorded
        with client.flow():
            state = client.select_and_status().state
            issued = roles.issuer.issue(client, roles.transport_keys, holder="Lee", limits=LIMITS, pin=PIN,
                                        puk=PUK, selected=state)
        assert [c[1] for c in commands].count(0xF2) == 1  # the caller's GET STATUS only
        record = roles.registry.card(issued.card_id)
        assert record is not None and record.state == "personalised"


def test_the_state_and_the_first_initialize_update_go_in_one_run(roles: Roles, extra_card,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """select_status_and_challenge: SELECT, GET STATUS and the transport keys' INITIALIZE UPDATE in one run;
    issue(challenged=…) opens PERSONALISE's session with that answer (two runs of the card's, not three). A
    wallet past its transport keys refuses that INITIALIZE UPDATE: its state, no answer, and the card as
    it was."""
    with extra_card() as client:
        runs: list[list[int]] = []
        original = client.transport.transmit_raw_many
        monkeypatch.setattr(client.transport, "transmit_raw_many",
                            lambda commands: runs.append([c[1] for c in commands]) or original(commands))
        with client.flow():
            status, challenged = client.select_status_and_challenge(roles.transport_keys)
            assert status.state == WalletLifeCycle.INSTALLED and challenged is not None
            assert "host_challenge" not in repr(challenged)
            issued = roles.issuer.issue(client, roles.transport_keys, holder="Kim", limits=LIMITS, pin=PIN,
                                        puk=PUK, selected=status.state, challenged=challenged)
        # then EXTERNAL AUTHENTICATE, PERSONALISE and the issuer keys' INITIALIZE UPDATE; EXTERNAL
        # AUTHENTICATE, the activation and GET PUBLIC KEY
        assert runs[0] == [0xA4, 0xF2, 0x50] and len(runs) == 3
        assert runs[1:] == [[0x82, 0x30, 0x50], [0x82, 0xF0, 0x48]]
        record = roles.registry.card(issued.card_id)
        assert record is not None and record.state == "personalised"
        runs.clear()
        with client.flow():
            status, challenged = client.select_status_and_challenge(roles.transport_keys)
        assert status.state == WalletLifeCycle.ACTIVE and challenged is None and runs == [[0xA4, 0xF2, 0x50]]
        client.select()
        client.verify_pin(PIN)  # the card as it was: issued, its PIN the one given


@pytest.mark.e2e
def test_a_third_party_verifies_the_stored_evidence_with_the_stored_pkc_only(
        roles: Roles, holder: WalletClient, tmp_path) -> None:
    """A copy of the merchant's database is all an auditor gets: no card, no issuer secret."""
    receipt = roles.merchant.complete(roles.answer(holder, 12_345, "evidence item"))
    copy = roles.registry.export(tmp_path / "audit.db")
    with WalletStore(copy) as audit:
        record = audit.evidence(receipt.evidence_id)
        assert record is not None
        sigma = verify_evidence(record)
        assert (sigma.amount, sigma.item, sigma.ts_m) == (12_345, b"evidence item", receipt.ts_m)
        other = _point(ec.generate_private_key(ec.SECP256R1()).public_key())
        tampered = {
            "amount in σ": replace(record, sigma=_sigma(sigma, amount=1).raw),
            "signature": replace(record, signature=record.signature[:-1] + bytes((record.signature[-1] ^ 1,))),
            "PKC": replace(record, pkc=other),
            "V-Card": replace(record, v_card=bytes(32)),
            "stored amount": replace(record, amount=1),
        }
        for what, bad in tampered.items():
            with pytest.raises(EvidenceError):
                verify_evidence(bad)
            assert what


# ---------------------------------------------------------------- [P001] (4) freshness


def test_a_stale_ts_m_is_rejected(roles: Roles, holder: WalletClient) -> None:
    answer = roles.answer(holder)
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), answer.pkc)
    assert answer.payment.verify(public_key)  # only its age is wrong
    roles.clock.offset = roles.merchant.window_ms + 1
    try:
        refused = _refusal(roles, answer)
    finally:
        roles.clock.offset = 0
    assert refused.reason == Refusal.STALE
    assert _refusal(roles, answer).reason == Refusal.REPLAYED  # an expired request stays closed


def test_a_ts_m_the_merchant_never_issued_is_rejected(roles: Roles, holder: WalletClient) -> None:
    """The card signs any TS_M it is given; the merchant accepts only its own, once."""
    request = roles.merchant.request_payment(1_000, "gift")
    answer = pay_with_card(holder, replace(request, ts_m=request.ts_m + 7), PIN)
    assert _refusal(roles, answer).reason == Refusal.UNKNOWN_REQUEST


def test_ts_m_is_unique_even_within_one_millisecond(roles: Roles) -> None:
    stamps = [roles.merchant.request_payment(1, "x").ts_m for _ in range(50)]
    assert len(set(stamps)) == 50 and stamps == sorted(stamps)


# ---------------------------------------------------------------- [P001] (5) one-wayness of V-Card


def test_v_card_differs_per_key_and_reveals_nothing_of_the_card_number(roles: Roles, issued, extra_card) -> None:
    card = roles.registry.card(issued.card_id)
    assert card is not None and card.v_card is not None and card.pkc is not None
    # the same card number hash under another key pair gives an unrelated V-Card
    other_key = _point(ec.generate_private_key(ec.SECP256R1()).public_key())
    other = v_card(other_key, card.number_hash)
    assert other != card.v_card
    assert sum(bin(a ^ b).count("1") for a, b in zip(other, card.v_card, strict=True)) > 64
    # no digit of the account, in any encoding, and not the hash either
    digits = issued.number.digits
    for form in (digits.encode(), digits[6:].encode(), card.number_hash, hashlib.sha256(digits.encode()).digest()):
        assert form not in card.v_card
    # an attacker holding PKC and V-Card who knows the IIN and all but the last three account digits
    # enumerates the candidates: with a plain SHA-256 H(R-Card) it would find the number, with the
    # issuer's keyed hash nothing matches
    prefix = digits[:-4]
    candidates = [prefix + f"{n:03d}" + str(luhn_check_digit(prefix + f"{n:03d}")) for n in range(1000)]
    assert digits in candidates
    plain = v_card(card.pkc, hashlib.sha256(digits.encode()).digest())
    assert [c for c in candidates if v_card(card.pkc, hashlib.sha256(c.encode()).digest()) == plain] == [digits]
    assert not [c for c in candidates if v_card(card.pkc, hashlib.sha256(c.encode()).digest()) == card.v_card]


# ---------------------------------------------------------------- [P001] (6) no reuse


@pytest.mark.e2e
def test_a_replayed_payment_is_rejected_by_merchant_and_issuer(roles: Roles, holder: WalletClient) -> None:
    first = roles.answer(holder, 2_000)
    roles.merchant.complete(first)
    assert _refusal(roles, first).reason == Refusal.REPLAYED
    # at another merchant of the same issuer, the σ names the first merchant
    other_shop = Merchant(roles.registry, "SHOP0002", {roles.issuer.iin: roles.issuer}, clock=roles.clock)
    with pytest.raises(PaymentRefused) as caught:
        other_shop.complete(first)
    assert caught.value.reason == Refusal.UNKNOWN_REQUEST
    # a dishonest or careless merchant forwarding it again: the issuer saw the card's counter already
    replay = AuthorisationRequest.for_payment(first.payment.sigma, first.payment.signature,
                                              v_card(first.pkc, first.payment.h_rcard))
    assert roles.issuer.authorise(replay).reason == DenyReason.REPLAYED.value
    # and an older payment never authorised, sent after a newer one, is refused the same way
    older = roles.answer(holder, 3_000)
    roles.merchant.complete(roles.answer(holder, 3_100))
    late = AuthorisationRequest.for_payment(older.payment.sigma, older.payment.signature,
                                            v_card(older.pkc, older.payment.h_rcard))
    assert roles.issuer.authorise(late).reason == DenyReason.REPLAYED.value


def test_a_captured_v_card_alone_is_rejected(roles: Roles, holder: WalletClient, issued) -> None:
    """Everything a payment exposes — V-Card, H(R-Card), the client info — is not enough to pay."""
    genuine = roles.answer(holder, 5_000)
    roles.merchant.complete(genuine)
    captured_v_card = v_card(genuine.pkc, genuine.payment.h_rcard)
    captured_h = genuine.payment.h_rcard
    # the attacker's own σ for a fresh request, with the victim's client info, signed with the attacker's key
    request = roles.merchant.request_payment(150_000, "laptop")
    sigma = _sigma(genuine.payment.sigma, ts_m=request.ts_m, amount=150_000, item=request.item,
                   counter=genuine.payment.sigma.counter + 100)
    forged, _ = _forge(sigma, captured_h)
    refused = _refusal(roles, forged)  # the merchant computes V-Card from the attacker's PKC
    assert refused.reason == Refusal.DENIED and refused.issuer is not None
    assert refused.issuer.reason == DenyReason.BINDING_BROKEN.value
    # the captured V-Card handed straight to the issuer, with the attacker's signature
    direct = AuthorisationRequest.for_payment(sigma, forged.payment.signature, captured_v_card)
    assert roles.issuer.authorise(direct).reason == DenyReason.BAD_SIGNATURE.value
    assert roles.registry.card(issued.card_id).last_counter == genuine.payment.sigma.counter  # type: ignore[union-attr]


# ---------------------------------------------------------------- [P002]: enrolment and binding


def test_a_card_with_another_key_pair_is_refused_binding_broken(roles: Roles, issued, holder: WalletClient,
                                                                extra_card) -> None:
    """A clone built from what a payment reveals (the IIN, H(R-Card), the client info) on a card with its
    own key pair: its signature verifies with its own PKC, but V-Card is not the enrolled one."""
    genuine = roles.answer(holder, 100)
    roles.merchant.complete(genuine)
    sigma = genuine.payment.sigma
    with extra_card() as clone:
        perso = Personalisation(sigma.iin, genuine.payment.h_rcard, sigma.holder, LIMITS, PIN, PUK,
                                roles.issuer.card_keys(roles.registry.card(issued.card_id)))  # type: ignore[arg-type]
        clone_pkc = clone.provision(roles.transport_keys, perso)
        clone.open_issuer_session(perso.keys)
        clone.credit(50_000)
        answer = roles.answer(clone, 20_000)
    assert answer.pkc == clone_pkc and answer.payment.h_rcard == genuine.payment.h_rcard
    assert v_card(clone_pkc, genuine.payment.h_rcard) != v_card(genuine.pkc, genuine.payment.h_rcard)
    refused = _refusal(roles, answer)
    assert refused.reason == Refusal.DENIED and refused.issuer.reason == DenyReason.BINDING_BROKEN.value  # type: ignore[union-attr]


def test_a_replaced_card_is_refused_and_the_new_one_only_after_enrolment(roles: Roles, extra_card) -> None:
    with extra_card() as old:
        first = roles.issue(old, holder="Choi")
        roles.merchant.complete(roles.answer(old, 1_000))
        in_flight = roles.answer(old, 2_000)  # signed by the old card, not yet completed
    with extra_card() as new:
        second = roles.issuer.issue(new, roles.transport_keys, holder="ignored", limits=LIMITS, pin=PIN, puk=PUK,
                                    account_id=first.account_id)
        assert second.account_id == first.account_id and second.card_id != first.card_id
        new.select()  # the issuer's flows end with the card reset
        new.open_issuer_session(roles.issuer.card_keys(roles.registry.card(second.card_id)))  # type: ignore[arg-type]
        new.credit(10_000)
        refused = _refusal(roles, roles.answer(new, 500))  # issued, but nobody enrolled it yet
        assert refused.issuer.reason == DenyReason.NOT_ENROLLED.value  # type: ignore[union-attr]
        with pytest.raises(IssuerError, match="identity proofing"):
            roles.issuer.enrol(new, first.account_id, evidence=" ", pin=PIN)
        roles.issuer.enrol(new, first.account_id, evidence="passport checked, replacement", pin=PIN)
        assert roles.merchant.complete(roles.answer(new, 500)).amount == 500
    refused = _refusal(roles, in_flight)
    assert refused.issuer.reason == DenyReason.CARD_REPLACED.value  # type: ignore[union-attr]


def test_enrolment_authenticates_the_card_and_the_holder(roles: Roles, issued, holder: WalletClient,
                                                         extra_card) -> None:
    with extra_card() as stranger:
        fresh = roles.issue(stranger, holder="Yoon", enrol=False)
        # the account's card is not the one in the reader: its keys do not open a session
        with pytest.raises(IssuerError, match="not card"):
            roles.issuer.enrol(holder, fresh.account_id, evidence="id checked", pin=PIN)
        with pytest.raises(StatusError) as caught:
            roles.issuer.enrol(stranger, fresh.account_id, evidence="id checked", pin="0000")
        assert caught.value.sw == 0x63C2
        assert roles.registry.card(fresh.card_id).state == "personalised"  # type: ignore[union-attr]
        roles.issuer.enrol(stranger, fresh.account_id, evidence="id checked", pin=PIN)
        with pytest.raises(IssuerError, match="already enrolled"):
            roles.issuer.enrol(stranger, fresh.account_id, evidence="again", pin=PIN)
    account = roles.registry.account(fresh.account_id)
    assert account is not None and account.proofing == "id checked"


@pytest.mark.e2e
def test_a_blocked_account_is_refused(roles: Roles, issued, holder: WalletClient) -> None:
    roles.issuer.block(issued.account_id, "card reported stolen")
    try:
        refused = _refusal(roles, roles.answer(holder, 700))  # the card still signs: the issuer refuses
        assert refused.issuer.reason == DenyReason.BLOCKED.value  # type: ignore[union-attr]
        assert "card reported stolen" in refused.issuer.detail  # type: ignore[union-attr]
        with pytest.raises(IssuerError, match="blocked"):
            roles.issuer.credit(holder, issued.account_id, 1_000)
        roles.issuer.block(issued.account_id, "and the card itself", client=holder)
        with pytest.raises(PaymentRefused) as caught:
            roles.answer(holder, 700)
        assert caught.value.reason == Refusal.CARD_REFUSED
    finally:
        roles.issuer.unblock(issued.account_id, client=holder)
    assert roles.merchant.complete(roles.answer(holder, 700)).amount == 700


def test_above_the_threshold_a_payment_without_a_fresh_pin_is_refused(roles: Roles, holder: WalletClient) -> None:
    large = LIMITS.step_up + 1
    request = roles.merchant.request_payment(large, "bicycle")
    holder.select()
    holder.verify_pin(PIN)
    balance = holder.get_balance()  # the PIN is verified, but not right before PAY
    with pytest.raises(StatusError) as caught:
        holder.pay(large, request.merchant_id, request.item, request.ts_m)
    assert caught.value.sw == 0x6982
    assert holder.get_balance() == balance
    small = roles.merchant.request_payment(LIMITS.step_up, "helmet")  # at the threshold the session PIN suffices
    holder.pay(small.amount, small.merchant_id, small.item, small.ts_m)
    answer = pay_with_card(holder, request, PIN)  # a fresh VERIFY right before PAY
    assert roles.merchant.complete(answer).amount == large


# ---------------------------------------------------------------- routing by IIN


def test_the_merchant_asks_the_issuer_of_the_iin_in_sigma(roles: Roles, holder: WalletClient, tmp_path) -> None:
    with WalletStore(tmp_path / "other-issuer.db") as other_db:
        other = Issuer(other_db, IssuerSecret(bytes(range(32)), "other"), iin="951234")
        shop = Merchant(roles.registry, "SHOP0003", {other.iin: other}, clock=roles.clock)
        with pytest.raises(PaymentRefused) as caught:
            shop.complete(pay_with_card(holder, shop.request_payment(100, "x"), PIN))
        assert caught.value.reason == Refusal.UNKNOWN_ISSUER
        both = Merchant(roles.registry, "SHOP0004", {other.iin: other, roles.issuer.iin: roles.issuer},
                        clock=roles.clock)
        assert both.complete(pay_with_card(holder, both.request_payment(100, "x"), PIN)).iin == roles.issuer.iin
        assert other_db.authorisations(1) == []


def test_records_survive_in_the_file(roles: Roles, issued) -> None:
    with sqlite3.connect(roles.registry.path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        row = raw.execute("SELECT masked, state FROM issuer_cards WHERE id = ?", (issued.card_id,)).fetchone()
    assert row == (issued.masked, "enrolled")
    assert CardNumber(issued.number.digits).masked == issued.masked
