"""The wallet applet's card client: one method per command of docs/wallet-apdu.md.

Issuer commands run inside a secure-messaging session (``sm.IssuerSession``); cardholder commands are
plain. The real card number (R-Card) never reaches the card or a trace: only its hash H(R-Card) does.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from cardsuite.apdu import SW_OK, CommandAPDU, ResponseAPDU, StatusError, select_by_name, verification_tries_left
from cardsuite.codec import parse_hex
from cardsuite.errors import CardsuiteError, ConfigurationError
from cardsuite.masking import opaque_eq
from cardsuite.tooling.manifest import load_manifest
from cardsuite.transport.base import Transport
from cardsuite.wallet.cardnumber import CardNumber
from cardsuite.wallet.sm import (
    CHALLENGE,
    CLA_SECURE,
    IssuerKeys,
    IssuerSession,
    SecureMessagingError,
    WalletInitializeUpdateResponse,
)


class NumberHasher(Protocol):
    """What personalisation needs of the issuer's secret (``issuer.IssuerSecret``): its keyed H(R-Card)."""

    def number_hash(self, number: CardNumber) -> bytes: ...

WALLET_AID = bytes.fromhex("F0636172641001")

CLA_ISO = 0x00
CLA_PROPRIETARY = 0x80

INS_VERIFY = 0x20
INS_CHANGE_REFERENCE_DATA = 0x24
INS_RESET_RETRY_COUNTER = 0x2C
INS_READ_RECORD = 0xB2
INS_GET_PUBLIC_KEY = 0x48
INS_INITIALIZE_UPDATE = 0x50
INS_PAY = 0x54
INS_GET_BALANCE = 0x5C
INS_EXTERNAL_AUTHENTICATE = 0x82
INS_GET_STATUS = 0xF2
INS_PERSONALISE = 0x30
INS_SET_LIMITS = 0x34
INS_CREDIT = 0x52
INS_SET_STATUS = 0xF0

PIN_REFERENCE = 0x81
PIN_BLOCK = 8
LOG_SFI = 1
LOG_RECORD = 29
HOLDER_MAX = 32
ITEM_MAX = 32
SW_SM_MISSING = 0x6987
SW_SM_INCORRECT = 0x6988
SW_RECORD_NOT_FOUND = 0x6A83

# Issuer commands carry encrypted PINs, PUKs and keys, cardholder commands PINs: mask_rules.txt hides
# their data by CLA and INS, whatever AID this instance has.


def manifest_transport_keys(manifest_path: Path) -> IssuerKeys:
    """The transport keys the manifest installs the wallet with (the simulated cards' install parameters)."""
    package = load_manifest(manifest_path).package("wallet")
    for applet in package.applets:
        if applet.aid == WALLET_AID:
            return IssuerKeys.from_install_params(applet.params)
    raise ConfigurationError(f"{manifest_path}: no wallet applet {WALLET_AID.hex().upper()}")


class WalletError(CardsuiteError):
    """A wallet operation the host refuses before sending anything (bad input, no session)."""


class WalletLifeCycle(IntEnum):
    INSTALLED = 0x01
    PERSONALISED = 0x02
    ACTIVE = 0x04
    BLOCKED = 0x08
    TERMINATED = 0x10


class LogType(IntEnum):
    PAYMENT = 0x01
    CREDIT = 0x02


# ---------------------------------------------------------------- encodings


def pin_block(pin: str, digits: tuple[int, int] = (4, 8)) -> bytes:
    """A PIN as the card takes it: 4..8 ASCII digits, then FF up to 8 bytes."""
    low, high = digits
    if not (pin.isascii() and pin.isdigit() and low <= len(pin) <= high):
        raise WalletError(f"a PIN has {low} to {high} digits" if low != high else f"a PUK has {low} digits")
    return pin.encode() + b"\xff" * (PIN_BLOCK - len(pin))


def puk_block(puk: str) -> bytes:
    return pin_block(puk, (8, 8))


def v_card(pkc: bytes, h_r_card: bytes) -> bytes:
    """V-Card = H(PKC ‖ H(R-Card)): what the issuer stores instead of the card number ([P001])."""
    return hashlib.sha256(pkc + h_r_card).digest()


def encode_iin(iin: str) -> bytes:
    """An IIN of 6 or 8 digits as 4 BCD bytes, F-padded."""
    if not (iin.isdigit() and len(iin) in (6, 8)):
        raise WalletError("an IIN has 6 or 8 digits (ISO/IEC 7812-1)")
    return parse_hex(iin.ljust(8, "F"), "IIN")  # BCD: the checked digits read as hex


def decode_iin(raw: bytes) -> str:
    return raw.hex().upper().rstrip("F")


def _u32(value: int, what: str) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise WalletError(f"{what} must fit 4 unsigned bytes, got {value}")
    return value.to_bytes(4, "big")


def _fixed(value: bytes, size: int, what: str) -> bytes:
    if len(value) != size:
        raise WalletError(f"{what} is {size} bytes, got {len(value)}")
    return value


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class Limits:
    max_balance: int
    max_payment: int
    step_up: int  # payments above this need a PIN verification right before

    def encode(self) -> bytes:
        return (_u32(self.max_balance, "max balance") + _u32(self.max_payment, "max payment")
                + _u32(self.step_up, "step-up threshold"))


@opaque_eq  # pytest's failed-`==` explanation would print PIN, PUK and keys field by field
@dataclass(frozen=True)
class Personalisation:
    """What PERSONALISE loads. It holds H(R-Card), never the card number (see ``for_card``).

    H(R-Card) has one definition, the issuer's keyed hash ``IssuerSecret.number_hash``: a plain hash of a
    number with a known IIN and a Luhn digit falls to enumeration (about 10^9 candidates for 16 digits)."""

    iin: str
    h_rcard: bytes
    holder: bytes
    limits: Limits
    pin: str = field(repr=False)
    puk: str = field(repr=False)
    keys: IssuerKeys = field(repr=False)

    @classmethod
    def for_card(cls, card_number: str | CardNumber, *, secret: NumberHasher, holder: bytes, limits: Limits,
                 pin: str, puk: str, keys: IssuerKeys) -> Personalisation:
        """From the real card number: keeps its IIN and the issuer's keyed hash of it only."""
        number = card_number if isinstance(card_number, CardNumber) else CardNumber.parse(card_number)
        return cls(number.iin, secret.number_hash(number), holder, limits, pin, puk, keys)

    def encode(self) -> bytes:
        if not 1 <= len(self.holder) <= HOLDER_MAX:
            raise WalletError(f"holder info is 1..{HOLDER_MAX} bytes")
        return (encode_iin(self.iin) + _fixed(self.h_rcard, 32, "H(R-Card)") + self.limits.encode()
                + pin_block(self.pin) + puk_block(self.puk) + self.keys.enc + self.keys.mac
                + bytes((len(self.holder),)) + self.holder)


@dataclass(frozen=True)
class WalletStatus:
    state: WalletLifeCycle
    key_version: int
    pin_tries: int
    puk_tries: int
    counter: int

    @classmethod
    def parse(cls, data: bytes) -> WalletStatus:
        if len(data) != 8:
            raise WalletError(f"GET STATUS answered {len(data)} bytes, expected 8")
        return cls(WalletLifeCycle(data[0]), data[1], data[2], data[3], int.from_bytes(data[4:8], "big"))


@dataclass(frozen=True)
class Challenged:
    """An INITIALIZE UPDATE the card answered in the run that read its state (select_status_and_challenge),
    for the provision() that follows with nothing sent to the card in between. The host challenge is not in
    the repr: with the transport keys (public) it gives the session keys."""

    key_version: int
    host_challenge: bytes = field(repr=False)
    answer: WalletInitializeUpdateResponse


@dataclass(frozen=True)
class Sigma:
    """The signed payment information σ ([P001]), parsed; ``raw`` is exactly what was signed."""

    raw: bytes
    ts_m: int
    holder: bytes
    item: bytes
    iin: str
    amount: int
    merchant_id: bytes
    counter: int

    @classmethod
    def parse(cls, raw: bytes) -> Sigma:
        try:
            ts_m = int.from_bytes(raw[0:8], "big")
            lh = raw[8]
            holder = raw[9:9 + lh]
            li = raw[9 + lh]
            off = 10 + lh
            item = raw[off:off + li]
            off += li
            rest = raw[off:]
        except IndexError:
            raise WalletError("σ is truncated") from None
        if len(holder) != lh or len(item) != li or len(rest) != 20:
            raise WalletError("σ does not have the layout TS_M ‖ Lh ‖ holder ‖ Li ‖ item ‖ IIN ‖ amount ‖ "
                              "merchant ID ‖ counter")
        return cls(raw, ts_m, holder, item, decode_iin(rest[0:4]), int.from_bytes(rest[4:8], "big"), rest[8:16],
                   int.from_bytes(rest[16:20], "big"))


@dataclass(frozen=True)
class Payment:
    """The card's answer to PAY: σ, its ECDSA-SHA256 signature by SKC (DER) and H(R-Card)."""

    sigma: Sigma
    signature: bytes
    h_rcard: bytes

    @classmethod
    def parse(cls, data: bytes) -> Payment:
        try:
            ls = data[0]
            sigma = data[1:1 + ls]
            lsig = data[1 + ls]
            signature = data[2 + ls:2 + ls + lsig]
            rest = data[2 + ls + lsig:]
        except IndexError:
            raise WalletError("PAY answer truncated") from None
        if len(sigma) != ls or len(signature) != lsig or len(rest) != 32:
            raise WalletError("PAY answer does not have the layout Lσ ‖ σ ‖ Ls ‖ signature ‖ H(R-Card)")
        return cls(Sigma.parse(sigma), signature, rest)

    def verify(self, public_key: ec.EllipticCurvePublicKey) -> bool:
        """Whether the signature over σ verifies with PKC (what the merchant or PG checks)."""
        try:
            public_key.verify(self.signature, self.sigma.raw, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class LogRecord:
    counter: int
    type: LogType
    amount: int
    balance: int
    ts_m: int
    merchant_id: bytes

    @classmethod
    def parse(cls, raw: bytes) -> LogRecord:
        if len(raw) != LOG_RECORD:
            raise WalletError(f"a log record is {LOG_RECORD} bytes, got {len(raw)}")
        return cls(int.from_bytes(raw[0:4], "big"), LogType(raw[4]), int.from_bytes(raw[5:9], "big"),
                   int.from_bytes(raw[9:13], "big"), int.from_bytes(raw[13:21], "big"), raw[21:29])


# ---------------------------------------------------------------- the client


_STATUS = CommandAPDU(CLA_PROPRIETARY, INS_GET_STATUS, le=8)
_GET_PUBLIC_KEY = CommandAPDU(CLA_PROPRIETARY, INS_GET_PUBLIC_KEY, le=65)


def _initialize_update(host_challenge: bytes, key_version: int) -> CommandAPDU:
    return CommandAPDU(CLA_PROPRIETARY, INS_INITIALIZE_UPDATE, key_version, 0, host_challenge, le=256)


def _external_authenticate(host_cryptogram: bytes) -> CommandAPDU:
    return CommandAPDU(CLA_PROPRIETARY, INS_EXTERNAL_AUTHENTICATE, 0, 0, host_cryptogram)


class WalletClient:
    """Talks to the wallet applet through any transport."""

    def __init__(self, transport: Transport, aid: bytes = WALLET_AID) -> None:
        self.transport = transport
        self.aid = aid
        self.session: IssuerSession | None = None

    def _send(self, command: CommandAPDU) -> ResponseAPDU:
        return self.transport.send(command)

    def _send_run(self, commands: Sequence[CommandAPDU]) -> list[ResponseAPDU]:
        """_send() of each command, handed to the transport together (Transport.transmit_many: a relay sends
        them in one round trip): for commands whose data is known before the run goes. The first answer that
        is not 9000 raises as _send() would, and the commands after it were not sent."""
        answers = self.transport.transmit_many(commands)
        for command, answer in zip(commands, answers, strict=False):
            answer.check(command)
        return answers

    def select(self) -> None:
        self.session = None  # selecting ends the card's session
        self.transport.select(self.aid)

    def select_and_status(self) -> WalletStatus:
        """SELECT and GET STATUS in one run."""
        self.session = None
        return WalletStatus.parse(self._send_run([select_by_name(self.aid), _STATUS])[1].data)

    def select_status_and_challenge(self, keys: IssuerKeys) -> tuple[WalletStatus, Challenged | None]:
        """SELECT, GET STATUS and an INITIALIZE UPDATE for ``keys`` in one run (a relay: one round trip, the
        state and the opening of provision() together). INITIALIZE UPDATE changes nothing on the card (only a
        failed EXTERNAL AUTHENTICATE costs a try), so it may go before the state is known: the answer is for
        a wallet found INSTALLED, None when the card refused it (a wallet past its transport keys)."""
        self.session = None
        challenge = os.urandom(CHALLENGE)
        commands = [select_by_name(self.aid), _STATUS, _initialize_update(challenge, keys.version)]
        answers = self.transport.transmit_many(commands)
        for command, answer in zip(commands[:2], answers, strict=False):
            answer.check(command)
        status = WalletStatus.parse(answers[1].data)
        if len(answers) < len(commands) or answers[2].sw != SW_OK:
            return status, None
        return status, Challenged(keys.version, challenge, WalletInitializeUpdateResponse.parse(answers[2].data))

    @contextmanager
    def flow(self) -> Iterator[WalletClient]:
        """One operation held exclusively (Transport.exclusive): select first inside it. Ending the
        outermost flow after a VERIFY or an issuer session resets the card, which ends both."""
        outermost = not self.transport.in_flow
        with self.transport.exclusive():
            try:
                yield self
            finally:
                if outermost:
                    self.session = None

    def status(self) -> WalletStatus:
        return WalletStatus.parse(self._send(_STATUS).data)

    # -- issuer session ([P000])
    def initialize_update(self, host_challenge: bytes, key_version: int = 0) -> WalletInitializeUpdateResponse:
        return WalletInitializeUpdateResponse.parse(self._send(_initialize_update(host_challenge, key_version)).data)

    def external_authenticate(self, host_cryptogram: bytes) -> None:
        self._send(_external_authenticate(host_cryptogram))

    def open_issuer_session(self, keys: IssuerKeys, host_challenge: bytes | None = None) -> IssuerSession:
        """INITIALIZE UPDATE and EXTERNAL AUTHENTICATE. The card cryptogram is checked before the host
        cryptogram goes out, so a card with other keys learns nothing."""
        self.session = None
        r1 = host_challenge if host_challenge is not None else os.urandom(CHALLENGE)
        answer = self.initialize_update(r1, keys.version)
        session = IssuerSession.start(keys, r1, answer)
        self.external_authenticate(session.host_cryptogram())
        self.session = session
        return session

    def secure(self, ins: int, p1: int = 0, p2: int = 0, data: bytes = b"") -> ResponseAPDU:
        """One issuer command, wrapped. A secure-messaging error ends the session on both sides."""
        if self.session is None:
            raise WalletError("no issuer session: call open_issuer_session first")
        command = self.session.wrap(CLA_SECURE, ins, p1, p2, data)
        try:
            return self._send(command)
        except StatusError as exc:
            if exc.sw in (SW_SM_MISSING, SW_SM_INCORRECT, 0x6982):
                self.session = None
            raise

    def personalise(self, perso: Personalisation) -> None:
        """PERSONALISE; the card then switches to the new keys and closes this session."""
        try:
            self.secure(INS_PERSONALISE, data=perso.encode())
        finally:
            self.session = None

    def set_limits(self, limits: Limits) -> None:
        self.secure(INS_SET_LIMITS, data=limits.encode())

    def credit(self, amount: int, timestamp: int | None = None, reference: bytes = bytes(8)) -> None:
        ts = int(time.time() * 1000) if timestamp is None else timestamp
        self.secure(INS_CREDIT, data=_u32(amount, "amount") + ts.to_bytes(8, "big") + _fixed(reference, 8, "reference"))

    def set_status(self, state: WalletLifeCycle) -> None:
        self.secure(INS_SET_STATUS, p1=int(state))
        if state == WalletLifeCycle.TERMINATED:
            self.session = None

    def activate(self) -> None:
        self.set_status(WalletLifeCycle.ACTIVE)

    def block(self) -> None:
        self.set_status(WalletLifeCycle.BLOCKED)

    def unblock(self) -> None:
        self.set_status(WalletLifeCycle.ACTIVE)

    def terminate(self) -> None:
        self.set_status(WalletLifeCycle.TERMINATED)

    def provision(self, transport_keys: IssuerKeys, perso: Personalisation, activate: bool = True, *,
                  challenged: Challenged | None = None) -> bytes:
        """A fresh card to issued: personalise with the transport keys, then (with the new issuer keys)
        activate. Returns PKC, which the issuer registers (it stores V-Card = H(PKC ‖ H(R-Card))).
        The card stays selected, the issuer session open: a caller that needs it whole holds a flow.

        Three runs (a relay: three round trips, not eight), each command's data known before its run goes:
        the MACs chain on the commands alone ([P000] 4.2, cardsuite.wallet.sm), and each card cryptogram is
        checked before the run that carries the host cryptogram answering it. SELECT and INITIALIZE UPDATE;
        EXTERNAL AUTHENTICATE, PERSONALISE and the next session's INITIALIZE UPDATE; EXTERNAL AUTHENTICATE,
        the activation and GET PUBLIC KEY. ``challenged``: the first run's answer, had with the state
        (select_status_and_challenge, nothing sent since): two runs."""
        self.session = None
        if challenged is not None and challenged.key_version == transport_keys.version:
            challenge, answer = challenged.host_challenge, challenged.answer
        else:
            challenge = os.urandom(CHALLENGE)
            answers = self._send_run([select_by_name(self.aid), _initialize_update(challenge, transport_keys.version)])
            answer = WalletInitializeUpdateResponse.parse(answers[1].data)
        session = IssuerSession.start(transport_keys, challenge, answer)
        opening = [_external_authenticate(session.host_cryptogram()),
                   session.wrap(CLA_SECURE, INS_PERSONALISE, 0, 0, perso.encode())]
        if not activate:
            return self._send_run([*opening, _GET_PUBLIC_KEY])[-1].data  # PERSONALISE closed the session
        challenge = os.urandom(CHALLENGE)
        answers = self._send_run([*opening, _initialize_update(challenge, perso.keys.version)])
        session = IssuerSession.start(perso.keys, challenge, WalletInitializeUpdateResponse.parse(answers[-1].data))
        activation = session.wrap(CLA_SECURE, INS_SET_STATUS, int(WalletLifeCycle.ACTIVE), 0)
        answers = self._send_run([_external_authenticate(session.host_cryptogram()), activation, _GET_PUBLIC_KEY])
        self.session = session
        return answers[-1].data

    # -- card key
    def get_public_key(self) -> bytes:
        """PKC as an uncompressed P-256 point (04 ‖ X ‖ Y)."""
        return self._send(_GET_PUBLIC_KEY).data

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), self.get_public_key())

    # -- cardholder ([P002])
    def verify_pin(self, pin: str) -> None:
        self._send(CommandAPDU(CLA_ISO, INS_VERIFY, 0, PIN_REFERENCE, pin_block(pin)))

    def pin_tries_left(self) -> int | None:
        """VERIFY without data: None when verified in this session, else the tries left."""
        response = self.transport.transmit(CommandAPDU(CLA_ISO, INS_VERIFY, 0, PIN_REFERENCE))
        if response.sw == SW_OK:
            return None
        left = verification_tries_left(response.sw)
        if left is None:
            response.check()
        return left

    def change_pin(self, old: str, new: str) -> None:
        self._send(CommandAPDU(CLA_ISO, INS_CHANGE_REFERENCE_DATA, 0, PIN_REFERENCE, pin_block(old) + pin_block(new)))

    def unblock_pin(self, puk: str, new_pin: str | None = None) -> None:
        """RESET RETRY COUNTER with the PUK; with new_pin also sets a new PIN."""
        if new_pin is None:
            command = CommandAPDU(CLA_ISO, INS_RESET_RETRY_COUNTER, 1, PIN_REFERENCE, puk_block(puk))
        else:
            command = CommandAPDU(CLA_ISO, INS_RESET_RETRY_COUNTER, 0, PIN_REFERENCE,
                                  puk_block(puk) + pin_block(new_pin))
        self._send(command)

    def get_balance(self) -> int:
        return int.from_bytes(self._send(CommandAPDU(CLA_PROPRIETARY, INS_GET_BALANCE, le=4)).data, "big")

    # -- payments ([P001])
    @staticmethod
    def pay_command(amount: int, merchant_id: bytes, item: bytes, ts_m: int) -> CommandAPDU:
        if not 1 <= len(item) <= ITEM_MAX:
            raise WalletError(f"item info is 1..{ITEM_MAX} bytes; pass its SHA-256 for longer descriptions")
        data = (_u32(amount, "amount") + ts_m.to_bytes(8, "big") + _fixed(merchant_id, 8, "merchant ID")
                + bytes((len(item),)) + item)
        return CommandAPDU(CLA_PROPRIETARY, INS_PAY, 0, 0, data, le=256)

    def pay(self, amount: int, merchant_id: bytes, item: bytes, ts_m: int | None = None) -> Payment:
        """PAY: item info of up to 32 bytes (or its hash); TS_M defaults to now in milliseconds."""
        ts = int(time.time() * 1000) if ts_m is None else ts_m
        return Payment.parse(self._send(self.pay_command(amount, merchant_id, item, ts)).data)

    # -- log
    def read_record(self, number: int) -> LogRecord:
        command = CommandAPDU(CLA_ISO, INS_READ_RECORD, number, (LOG_SFI << 3) | 0x04, le=LOG_RECORD)
        return LogRecord.parse(self._send(command).data)

    def read_log(self) -> list[LogRecord]:
        """Every record, newest first."""
        records: list[LogRecord] = []
        for number in range(1, 255):
            try:
                records.append(self.read_record(number))
            except StatusError as exc:
                if exc.sw == SW_RECORD_NOT_FOUND:
                    break
                raise
        return records


__all__ = [
    "WALLET_AID", "IssuerKeys", "WalletLifeCycle", "Limits", "LogRecord", "LogType", "Payment", "Personalisation",
    "SecureMessagingError", "Sigma", "WalletClient", "WalletError", "WalletStatus",
    "manifest_transport_keys", "pin_block", "puk_block", "v_card",
]
