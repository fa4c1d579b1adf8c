"""Divisible prepaid e-cash with limited traceability ([P004]): the protocol's messages and primitives.

docs/ecash-protocol.md describes the protocol as built; this module is its executable form, shared by the
card client (``ecash.card``), the roles (``ecash.roles``) and the tests. In short:

* units are 10^e for e = 0..4 (1, 10, 100, 1,000, 10,000), so the seed's 20,430 = 2 × 10,000 + 4 × 100 +
  3 × 10 works;
* the CA certifies S_CA(PID ‖ g^c), g^c generated on the card; the broker certifies amount ranges
  S_B(n_1 ‖ n_10 ‖ n_100 ‖ n_1000 ‖ n_10000 ‖ PID ‖ SN), ECDSA P-256 both;
* the token key K_T = SHA-256(x(c·B_dh) ‖ 'K') is an EC Diffie-Hellman secret of card and broker;
* for vendor V and unit e: s_0 = SHA-256(x(c·V) ‖ 'R' ‖ e), s_k = SHA-256(s_(k-1)), payword
  pw_k = SHA-256(s_k ‖ 'P');
* a token is PID ‖ vendor ID ‖ reference ‖ amount ‖ N ‖ N × (e ‖ count ‖ pw) ‖ HMAC-SHA-256(K_T, body).

``SoftPurse`` is the card's purse in software: the reference the card is tested against, and the
customer who cheats (a cloned or opened card) in the tests of what vendor and broker catch.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cardsuite.errors import CardsuiteError

UNITS: tuple[int, ...] = (1, 10, 100, 1_000, 10_000)
"""Unit values, index e = exponent."""
MAX_UNITS_PER_PAYMENT = 99
"""Units of one denomination per payment at most: bounds the card's hashing per payment."""
MAX_VENDORS = 8
PID_LENGTH = 8
SN_LENGTH = 4
VENDOR_ID_LENGTH = 8
REFERENCE_LENGTH = 8
POINT_LENGTH = 65
RANGE_BODY_LENGTH = len(UNITS) * 4 + PID_LENGTH + SN_LENGTH
ROW_LENGTH = 1 + 4 + 32
TOKEN_HEADER_LENGTH = PID_LENGTH + VENDOR_ID_LENGTH + REFERENCE_LENGTH + 4 + 1
CERT_LENGTH = 32

LABEL_TOKEN_KEY = b"K"
LABEL_ROOT = b"R"
LABEL_PAYWORD = b"P"


class EcashError(CardsuiteError):
    """A message does not parse, or a role refuses it (the message says why)."""


def sha256(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


# ---------------------------------------------------------------- keys


def encode_point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def decode_point(raw: bytes, what: str = "public value") -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise EcashError(f"the {what} is not a P-256 point") from None


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def ecdh_x(private: ec.EllipticCurvePrivateKey, public_point: bytes) -> bytes:
    """The x-coordinate of private·public (KeyAgreement.ALG_EC_SVDP_DH_PLAIN on the card)."""
    return private.exchange(ec.ECDH(), decode_point(public_point))


def sign(private: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return private.sign(data, ec.ECDSA(hashes.SHA256()))


def verify(public_point: bytes, signature: bytes, data: bytes) -> bool:
    try:
        decode_point(public_point).verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, EcashError):
        return False
    return True


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise EcashError("stored key is not an EC key")
    return key


# ---------------------------------------------------------------- derivations


def token_key(x_broker: bytes) -> bytes:
    """K_T from the card–broker DH x-coordinate."""
    return sha256(x_broker, LABEL_TOKEN_KEY)


def chain_root(x_vendor: bytes, unit: int) -> bytes:
    """s_0 of the chain for one vendor and unit exponent."""
    return sha256(x_vendor, LABEL_ROOT, bytes((unit,)))


def chain_forward(state: bytes, steps: int) -> bytes:
    """s_(k+steps) from s_k: the root hashed once more per unit spent."""
    for _ in range(steps):
        state = sha256(state)
    return state


def payword(state: bytes) -> bytes:
    """What travels for count k: a one-way image of s_k, so nobody who sees it can hash it onward."""
    return sha256(state, LABEL_PAYWORD)


def vendor_id(vendor_point: bytes) -> bytes:
    return sha256(vendor_point)[:VENDOR_ID_LENGTH]


def certify_token(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()


# ---------------------------------------------------------------- amounts


def decompose(amount: int, available: Sequence[int], cap: int = MAX_UNITS_PER_PAYMENT) -> tuple[int, ...] | None:
    """Units of each denomination (index e) making ``amount``, largest first, each at most what is
    available and at most ``cap``; a used-up unit falls through to smaller ones. None when impossible.
    Greedy is exact here: every unit divides the next larger one (what the card does, byte for byte)."""
    if amount <= 0:
        raise EcashError("an amount is positive")
    counts = [0] * len(UNITS)
    rest = amount
    for e in reversed(range(len(UNITS))):
        counts[e] = min(rest // UNITS[e], available[e], cap)
        rest -= counts[e] * UNITS[e]
    return tuple(counts) if rest == 0 else None


def value_of(counts: Sequence[int]) -> int:
    return sum(n * u for n, u in zip(counts, UNITS, strict=True))


def counts_for(amount: int) -> tuple[int, ...]:
    """The broker's default split of a prepayment: about 10 % in 1s, 10 % in 10s, 20 % in 100s and 30 %
    in 1,000s, the rest in the largest units it fills, so small and large amounts both stay payable."""
    if amount <= 0:
        raise EcashError("a prepayment is positive")
    shares = (0.1, 0.1, 0.2, 0.3, 0.0)
    counts = [int(amount * share) // unit for share, unit in zip(shares, UNITS, strict=True)]
    rest = amount - value_of(counts)
    for e in reversed(range(len(UNITS))):
        counts[e] += rest // UNITS[e]
        rest %= UNITS[e]
    return tuple(counts)


def _u32(value: int, what: str) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise EcashError(f"{what} must fit 4 unsigned bytes, got {value}")
    return value.to_bytes(4, "big")


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class CaCertificate:
    """S_CA(PID ‖ g^c): the CA vouches that g^c belongs to a registered customer, named only by PID."""

    pid: bytes
    public_value: bytes
    signature: bytes

    @property
    def body(self) -> bytes:
        return self.pid + self.public_value

    def encode(self) -> bytes:
        return self.body + self.signature

    @classmethod
    def parse(cls, raw: bytes) -> CaCertificate:
        head = PID_LENGTH + POINT_LENGTH
        if len(raw) <= head:
            raise EcashError("a CA certificate is PID ‖ g^c ‖ signature")
        return cls(raw[:PID_LENGTH], raw[PID_LENGTH:head], raw[head:])

    def verify(self, ca_point: bytes) -> bool:
        return verify(ca_point, self.signature, self.body)


@dataclass(frozen=True)
class RangeBody:
    """M_1_n1 ‖ M_10_n2 ‖ M_100_n3 ‖ M_1000_n4 ‖ M_10000_n5 ‖ PID ‖ SN."""

    counts: tuple[int, ...]
    pid: bytes
    sn: int

    def encode(self) -> bytes:
        if len(self.counts) != len(UNITS) or len(self.pid) != PID_LENGTH:
            raise EcashError("a range body has five counts and an 8-byte PID")
        return b"".join(_u32(n, "a count") for n in self.counts) + self.pid + _u32(self.sn, "SN")

    @classmethod
    def parse(cls, raw: bytes) -> RangeBody:
        if len(raw) != RANGE_BODY_LENGTH:
            raise EcashError(f"a range body is {RANGE_BODY_LENGTH} bytes, got {len(raw)}")
        counts = tuple(int.from_bytes(raw[4 * e:4 * e + 4], "big") for e in range(len(UNITS)))
        return cls(counts, raw[20:28], int.from_bytes(raw[28:32], "big"))

    @property
    def value(self) -> int:
        return value_of(self.counts)


@dataclass(frozen=True)
class RangeCertificate:
    """S_B(range body): ECDSA-SHA256 by the broker over the 32-byte body."""

    body: RangeBody
    signature: bytes

    def encode(self) -> bytes:
        return self.body.encode() + self.signature

    @classmethod
    def parse(cls, raw: bytes) -> RangeCertificate:
        return cls(RangeBody.parse(raw[:RANGE_BODY_LENGTH]), raw[RANGE_BODY_LENGTH:])

    def verify(self, broker_point: bytes) -> bool:
        return verify(broker_point, self.signature, self.body.encode())


# ---------------------------------------------------------------- tokens


@dataclass(frozen=True)
class TokenRow:
    unit: int  # exponent e: the row is worth (count - previous count) × 10^e
    count: int  # cumulative count of this unit at this vendor
    payword: bytes

    def encode(self) -> bytes:
        return bytes((self.unit,)) + _u32(self.count, "count") + self.payword


@dataclass(frozen=True)
class Token:
    """What the card answers to ECASH PAY and the vendor deposits: body ‖ HMAC(K_T, body)."""

    pid: bytes
    vendor_id: bytes
    reference: bytes
    amount: int
    rows: tuple[TokenRow, ...]
    cert: bytes = field(repr=False)

    @property
    def body(self) -> bytes:
        return (self.pid + self.vendor_id + self.reference + _u32(self.amount, "amount")
                + bytes((len(self.rows),)) + b"".join(row.encode() for row in self.rows))

    def encode(self) -> bytes:
        return self.body + self.cert

    @classmethod
    def parse(cls, raw: bytes) -> Token:
        if len(raw) < TOKEN_HEADER_LENGTH + CERT_LENGTH:
            raise EcashError(f"a token has at least {TOKEN_HEADER_LENGTH + CERT_LENGTH} bytes, got {len(raw)}")
        n = raw[28]
        if len(raw) != TOKEN_HEADER_LENGTH + n * ROW_LENGTH + CERT_LENGTH or n > len(UNITS):
            raise EcashError(f"a token with {n} rows does not have {len(raw)} bytes")
        rows = []
        for i in range(n):
            at = TOKEN_HEADER_LENGTH + i * ROW_LENGTH
            row = raw[at:at + ROW_LENGTH]
            rows.append(TokenRow(row[0], int.from_bytes(row[1:5], "big"), row[5:]))
        return cls(raw[0:8], raw[8:16], raw[16:24], int.from_bytes(raw[24:28], "big"), tuple(rows), raw[-CERT_LENGTH:])

    def units(self) -> dict[int, int]:
        """Count per unit exponent."""
        return {row.unit: row.count for row in self.rows}


# ---------------------------------------------------------------- the purse in software


@dataclass
class VendorChains:
    counts: list[int]
    states: list[bytes] = field(repr=False)


@dataclass
class SoftPurse:
    """The card's purse, in software. ``honest=False`` makes it the cheating customer of the seed's
    analysis: it ignores its own ranges (spending past them, or the same units at two vendors)."""

    broker_dh_point: bytes
    secret: ec.EllipticCurvePrivateKey = field(default_factory=new_private_key, repr=False)
    honest: bool = True
    pid: bytes | None = None
    limits: list[int] = field(default_factory=lambda: [0] * len(UNITS))
    spent: list[int] = field(default_factory=lambda: [0] * len(UNITS))
    last_sn: int = 0
    vendors: dict[bytes, VendorChains] = field(default_factory=dict)

    @property
    def public_value(self) -> bytes:
        return encode_point(self.secret.public_key())

    @property
    def key(self) -> bytes:
        return token_key(ecdh_x(self.secret, self.broker_dh_point))

    def load_range(self, cert: RangeCertificate, broker_point: bytes) -> None:
        if not cert.verify(broker_point):
            raise EcashError("the range certificate's signature does not verify")
        if self.pid is not None and cert.body.pid != self.pid:
            raise EcashError("the range certificate is for another PID")
        if cert.body.sn <= self.last_sn:
            raise EcashError(f"SN {cert.body.sn} was used already")
        self.pid, self.last_sn = cert.body.pid, cert.body.sn
        self.limits = [a + b for a, b in zip(self.limits, cert.body.counts, strict=True)]

    def pay(self, amount: int, reference: bytes, vendor_point: bytes) -> Token:
        if self.pid is None:
            raise EcashError("no range certificate loaded")
        available = [lim - s for lim, s in zip(self.limits, self.spent, strict=True)]
        if not self.honest:
            available = [MAX_UNITS_PER_PAYMENT] * len(UNITS)
        counts = decompose(amount, available)
        if counts is None:
            raise EcashError(f"the ranges cannot make {amount}")
        vid = vendor_id(vendor_point)
        chains = self.vendors.get(vid)
        if chains is None:
            x = ecdh_x(self.secret, vendor_point)
            chains = VendorChains([0] * len(UNITS), [chain_root(x, e) for e in range(len(UNITS))])
            self.vendors[vid] = chains
        rows = []
        for e in reversed(range(len(UNITS))):
            if counts[e]:
                chains.states[e] = chain_forward(chains.states[e], counts[e])
                chains.counts[e] += counts[e]
                rows.append(TokenRow(e, chains.counts[e], payword(chains.states[e])))
        self.spent = [s + n for s, n in zip(self.spent, counts, strict=True)]
        unsigned = Token(self.pid, vid, reference, amount, tuple(rows), b"")
        return Token(self.pid, vid, reference, amount, tuple(rows), certify_token(self.key, unsigned.body))


def new_reference() -> bytes:
    return os.urandom(REFERENCE_LENGTH)


def card_operations(counts: Sequence[int], new_vendor: bool) -> dict[str, int]:
    """What the card computes for one payment (EcashPurse.pay): SHA-256 invocations (the vendor ID,
    the five roots at first contact, one per unit spent, one payword per row, HMAC's inner and outer
    hash) and EC point multiplications (the DH with a new vendor)."""
    rows = sum(1 for n in counts if n)
    return {"sha256": 1 + (len(UNITS) if new_vendor else 0) + sum(counts) + rows + 2,
            "chain_hashes": sum(counts), "ecdh": 1 if new_vendor else 0, "rows": rows}
