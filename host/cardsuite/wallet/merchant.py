"""The merchant and its payment gateway ([P001] steps 2, 5, 6 and 9), and the cardholder's side.

1. ``Merchant.request_payment``: item info and the merchant's own timestamp TS_M, recorded (TS_M is
   unique per merchant and usable once).
2. ``pay_with_card``: the cardholder's device selects the wallet, verifies the PIN right before PAY (so
   step-up is always satisfied by a fresh PIN) and answers σ, its signature, H(R-Card) and PKC.
3. ``Merchant.complete``: σ must answer a request this merchant made, inside the time window, not used
   before, with the same amount, item and merchant; the signature must verify with the presented PKC.
   Only then is V-Card = H(PKC ‖ H(R-Card)) computed (never taken from the payer) and sent to the issuer
   chosen by the IIN in σ. An approved payment's σ, signature and PKC are kept as evidence that anyone
   can verify later with ``verify_evidence`` and nothing else.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from cardsuite.apdu import SW_VERIFICATION_BLOCKED, StatusError
from cardsuite.errors import CardsuiteError
from cardsuite.wallet.card import ITEM_MAX, Payment, Sigma, WalletClient, WalletError, v_card
from cardsuite.wallet.issuer import AuthorisationRequest, AuthorisationResponse
from cardsuite.wallet.store import EvidenceRow, WalletStore

log = logging.getLogger(__name__)

DEFAULT_WINDOW_MS = 120_000  # how long a TS_M stays fresh
MAX_SKEW_MS = 5_000
MERCHANT_ID_LENGTH = 8
# PAY's refusals in docs/wallet-apdu.md, said for the cardholder
_CARD_REFUSALS = {
    0x6985: "the card is not active or its balance is too low",
    0x6A80: "the amount is outside the card's limits",
    0x6982: "the PIN was not verified right before a payment above the step-up threshold",
}


class Refusal(StrEnum):
    UNKNOWN_REQUEST = "unknown-request"
    REPLAYED = "replayed"
    STALE = "stale"
    MISMATCH = "mismatch"
    BAD_KEY = "bad-key"
    BAD_SIGNATURE = "bad-signature"
    UNKNOWN_ISSUER = "unknown-issuer"
    DENIED = "denied-by-issuer"
    CARD_REFUSED = "card-refused"


class PaymentRefused(CardsuiteError):
    """A payment the merchant or the issuer refused; ``reason`` says which check, ``issuer`` the issuer's answer."""

    def __init__(self, reason: Refusal, detail: str, issuer: AuthorisationResponse | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.issuer = issuer
        super().__init__(f"payment refused ({reason.value}): {detail}")


class EvidenceError(CardsuiteError):
    """A stored payment record does not verify."""


class AuthorisationService(Protocol):
    def authorise(self, request: AuthorisationRequest) -> AuthorisationResponse: ...


def merchant_id(text: str | bytes) -> bytes:
    """A merchant ID: 1 to 8 ASCII characters, space-padded to 8 bytes."""
    raw = text.encode() if isinstance(text, str) else bytes(text)
    if not 1 <= len(raw) <= MERCHANT_ID_LENGTH or not raw.isascii():
        raise WalletError(f"a merchant ID is 1 to {MERCHANT_ID_LENGTH} ASCII characters")
    return raw.ljust(MERCHANT_ID_LENGTH, b" ")


def item_info(description: str | bytes) -> bytes:
    """Item info as the card signs it: the description itself up to 32 bytes, else its SHA-256."""
    raw = description.encode() if isinstance(description, str) else bytes(description)
    if not raw:
        raise WalletError("item info is empty")
    return raw if len(raw) <= ITEM_MAX else hashlib.sha256(raw).digest()


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class PaymentRequest:
    """Step 2: what the merchant sends the cardholder."""

    merchant_id: bytes
    amount: int
    item: bytes
    ts_m: int


@dataclass(frozen=True)
class CardPayment:
    """Step 4: what the cardholder's device sends back: the card's PAY answer and PKC."""

    payment: Payment
    pkc: bytes


@dataclass(frozen=True)
class PaymentReceipt:
    evidence_id: int
    auth_code: str
    merchant_id: bytes
    amount: int
    ts_m: int
    iin: str
    counter: int


# ---------------------------------------------------------------- cardholder side


def pay_with_card(client: WalletClient, request: PaymentRequest, pin: str) -> CardPayment:
    """The cardholder's device: select, read PKC, VERIFY immediately before PAY (a fresh PIN, so
    payments above the step-up threshold pass too), PAY; held from SELECT to PAY, and the PIN gone after."""
    with client.flow():
        client.select()
        pkc = client.get_public_key()
        try:
            client.verify_pin(pin)
            payment = client.pay(request.amount, request.merchant_id, request.item, request.ts_m)
        except StatusError as exc:
            if exc.sw >> 8 == 0x63 or exc.sw == SW_VERIFICATION_BLOCKED:
                raise  # a wrong or blocked PIN: the holder's matter, said as the card says it
            why = _CARD_REFUSALS.get(exc.sw, exc.meaning)
            raise PaymentRefused(Refusal.CARD_REFUSED, f"the card refused to pay: {why} ({exc.sw:04X})") from None
    return CardPayment(payment, pkc)


# ---------------------------------------------------------------- evidence


def verify_evidence(record: EvidenceRow) -> Sigma:
    """What a third party (a court, the issuer, an auditor) checks with the stored record only: the
    signature over σ verifies with the stored PKC, V-Card is H(PKC ‖ H(R-Card)), and the stored amount,
    merchant and TS_M are those in σ. Returns σ parsed; raises EvidenceError otherwise."""
    try:
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), record.pkc)
    except ValueError:
        raise EvidenceError(f"evidence {record.id}: the stored PKC is not a P-256 point") from None
    payment = Payment(Sigma.parse(record.sigma), record.signature, record.h_rcard)
    if not payment.verify(public_key):
        raise EvidenceError(f"evidence {record.id}: the signature does not verify with the stored PKC")
    if v_card(record.pkc, record.h_rcard) != record.v_card:
        raise EvidenceError(f"evidence {record.id}: V-Card is not H(PKC ‖ H(R-Card))")
    sigma = payment.sigma
    if (sigma.amount, sigma.merchant_id, sigma.ts_m, sigma.iin) != (record.amount, record.merchant_id, record.ts_m,
                                                                     record.iin):
        raise EvidenceError(f"evidence {record.id}: the stored amount, merchant, TS_M or IIN differ from σ")
    return sigma


# ---------------------------------------------------------------- the merchant


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Merchant:
    """A merchant with its payment gateway: requests, verification, authorisation by IIN, evidence."""

    def __init__(self, registry: WalletStore, mid: str | bytes, issuers: Mapping[str, AuthorisationService], *,
                 window_ms: int = DEFAULT_WINDOW_MS, clock: Callable[[], int] = _now_ms) -> None:
        self.registry = registry
        self.id = merchant_id(mid)
        self.issuers = issuers
        self.window_ms = window_ms
        self.clock = clock

    def request_payment(self, amount: int, item: str | bytes) -> PaymentRequest:
        """Step 2: a new TS_M (now in milliseconds, strictly after every earlier one of this merchant)."""
        if not 0 < amount <= 0xFFFFFFFF:
            raise WalletError("an amount is a positive 4-byte value")
        info = item_info(item)
        with self.registry.transaction():
            ts_m = max(self.clock(), self.registry.last_ts_m(self.id) + 1)
            self.registry.add_request(self.id, ts_m, amount, info)
        return PaymentRequest(self.id, amount, info, ts_m)

    def _refuse(self, ts_m: int, reason: Refusal, detail: str,
                issuer: AuthorisationResponse | None = None) -> PaymentRefused:
        """Closes the request as refused (it cannot be used again) and makes the exception to raise."""
        with self.registry.transaction():
            self.registry.close_request(self.id, ts_m, "refused", f"{reason.value}: {detail}")
        log.info("payment at TS_M %d refused: %s", ts_m, reason.value)
        return PaymentRefused(reason, detail, issuer)

    def complete(self, answer: CardPayment) -> PaymentReceipt:
        """Steps 5, 6 and 9: verify, authorise with the issuer, keep the evidence.

        Every check reads σ as parsed here from the bytes the signature covers: the parsed fields of the
        payer's ``Sigma`` are the payer's word, and a payer can set them to anything without breaking the
        signature (they are not what it covers)."""
        try:
            sigma = Sigma.parse(answer.payment.sigma.raw)
        except WalletError as exc:
            raise PaymentRefused(Refusal.MISMATCH, f"σ: {exc}") from None
        if sigma.merchant_id != self.id:
            raise PaymentRefused(Refusal.UNKNOWN_REQUEST, "σ names another merchant")
        request = self.registry.request(self.id, sigma.ts_m)
        if request is None:
            raise PaymentRefused(Refusal.UNKNOWN_REQUEST, f"TS_M {sigma.ts_m} was not issued by this merchant")
        if request.state != "open":
            raise PaymentRefused(Refusal.REPLAYED, f"TS_M {sigma.ts_m} was already used ({request.state})")
        age = self.clock() - sigma.ts_m
        if age > self.window_ms:
            raise self._refuse(sigma.ts_m, Refusal.STALE, f"TS_M is {age} ms old; the window is {self.window_ms} ms")
        if age < -MAX_SKEW_MS:
            raise PaymentRefused(Refusal.STALE, "TS_M is in the future")
        if (sigma.amount, sigma.item) != (request.amount, request.item):
            raise PaymentRefused(Refusal.MISMATCH, "σ does not carry the requested amount and item")
        try:
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), answer.pkc)
        except ValueError:
            raise PaymentRefused(Refusal.BAD_KEY, "PKC is not a P-256 point") from None
        if not answer.payment.verify(public_key):
            raise PaymentRefused(Refusal.BAD_SIGNATURE, "the signature over σ does not verify with PKC")
        with self.registry.transaction():
            if not self.registry.claim_request(self.id, sigma.ts_m):
                raise PaymentRefused(Refusal.REPLAYED, f"TS_M {sigma.ts_m} was already used")
        computed = v_card(answer.pkc, answer.payment.h_rcard)
        issuer = self.issuers.get(sigma.iin)
        if issuer is None:
            raise self._refuse(sigma.ts_m, Refusal.UNKNOWN_ISSUER, f"no issuer for IIN {sigma.iin}")
        response = issuer.authorise(AuthorisationRequest.for_payment(sigma, answer.payment.signature, computed))
        if not response.approved or response.auth_code is None:
            raise self._refuse(sigma.ts_m, Refusal.DENIED, f"{response.reason}: {response.detail}", response)
        with self.registry.transaction():
            evidence_id = self.registry.add_evidence(sigma, signature=answer.payment.signature, pkc=answer.pkc,
                                                     h_rcard=answer.payment.h_rcard, v_card=computed,
                                                     auth_code=response.auth_code)
            self.registry.close_request(self.id, sigma.ts_m, "approved", response.auth_code)
        log.info("payment at TS_M %d approved", sigma.ts_m)
        return PaymentReceipt(evidence_id, response.auth_code, self.id, sigma.amount, sigma.ts_m, sigma.iin,
                              sigma.counter)
