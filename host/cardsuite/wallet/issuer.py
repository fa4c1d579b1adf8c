"""The issuer ([P001], 002, 000): card numbers, personalisation, enrolment, credit, blacklist, and the
authorisation of payments by V-Card.

* Issuance: a new ISO/IEC 7812 number under the issuer's IIN; the card is personalised through the
  secure messaging with the transport keys and receives its own master keys, derived from the issuer
  master secret and the card number's hash (never stored, never shown).
* Enrolment ([P002]) is separate from issuance and from every later use: after identity proofing
  (recorded), the issuer authenticates the card with the card's keys, has the holder verify the PIN,
  reads PKC and stores V-Card = H(PKC ‖ H(R-Card)) bound to the account.
* Authorisation ([P001]): the merchant sends V-Card, σ and the signature; the issuer finds the card
  by the client info in σ and approves only if V-Card equals the enrolled binding, the account is not
  blacklisted, the signature verifies with the *enrolled* PKC, and the card's transaction counter moved
  forward (a replayed σ is refused even if a merchant did not notice).

H(R-Card) here is keyed: HMAC-SHA256 under a key derived from the master secret. The card and the
merchant treat it as 32 opaque bytes, and with a plain SHA-256 anyone holding PKC and V-Card could
enumerate the ~10^9 account numbers under a known IIN; keyed, V-Card reveals nothing without the
issuer's secret ([P001] requirement 5, one-wayness).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cardsuite.apdu import StatusError
from cardsuite.errors import CardsuiteError, ConfigurationError
from cardsuite.keysource import DevelopmentSource, EnvironmentSource, KeyFileSource, Offer, one_source
from cardsuite.settings import ENV_ISSUER_KEY_FILE, ENV_ISSUER_SECRET, ENV_TRANSPORT_KEYS
from cardsuite.wallet.card import (
    HOLDER_MAX,
    Challenged,
    Limits,
    Personalisation,
    Sigma,
    WalletClient,
    WalletError,
    WalletLifeCycle,
    manifest_transport_keys,
)
from cardsuite.wallet.cardnumber import CardNumber, check_iin
from cardsuite.wallet.sm import KEY_LENGTH, IssuerKeys, SecureMessagingError
from cardsuite.wallet.store import CardRow, WalletStore

log = logging.getLogger(__name__)

DEFAULT_IIN = "940001"
MIN_SECRET = 32
# Public on purpose, like every vendor's test key: usable only when asked for by name (--dev-keys).
_DEV_SECRET = hashlib.sha256(b"cardsuite development issuer master secret (public, simulator only)").digest()
_SALT = b"cardsuite/wallet/v1"
SW_CONDITIONS = 0x6985
SW_KEY_VERSION = 0x6A88
SW_AUTH_FAILED = 0x6300


class IssuerError(CardsuiteError):
    """An issuer operation refused (unknown account, wrong state, card not the enrolled one)."""


class DenyReason(StrEnum):
    """Why an authorisation was denied; the value is what the records and the CLI show."""

    WRONG_ISSUER = "wrong-issuer"
    UNKNOWN_CARD = "unknown-card"
    NOT_ENROLLED = "not-enrolled"
    CARD_REPLACED = "card-replaced"
    BLOCKED = "account-blocked"
    BINDING_BROKEN = "binding-broken"
    BAD_SIGNATURE = "bad-signature"
    MISMATCH = "request-mismatch"
    REPLAYED = "replayed"
    LIMIT = "over-limit"


# ---------------------------------------------------------------- keys


class IssuerSecret:
    """The issuer master secret. Loaded from the environment or a key file, never from the command line;
    ``repr`` shows only its key check value."""

    def __init__(self, secret: bytes, source: str) -> None:
        if len(secret) < MIN_SECRET:
            raise ConfigurationError(f"the issuer master secret from {source} has {len(secret)} bytes; "
                                     f"at least {MIN_SECRET} are needed")
        self._secret = bytes(secret)
        self.source = source

    @property
    def is_development(self) -> bool:
        return hmac.compare_digest(self._secret, _DEV_SECRET)

    @property
    def check_value(self) -> str:
        """A key check value: identifies the secret without revealing it (stored in the database)."""
        return hmac.new(self._secret, b"cardsuite key check value", hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"IssuerSecret(source={self.source!r}, kcv={self.check_value})"

    @classmethod
    def generate(cls, purpose: str) -> IssuerSecret:
        """A fresh random secret held in memory only (the e-cash story, benches, tests): its cards' number
        hashes cannot be enumerated, and nothing recorded under it outlives the process."""
        return cls(secrets.token_bytes(32), f"a one-off secret ({purpose})")

    @classmethod
    def development(cls) -> IssuerSecret:
        return cls(_DEV_SECRET, "--dev-keys (public development secret)")

    @classmethod
    def from_key_file(cls, path: Path) -> IssuerSecret:
        """A file holding the secret in hex (one line) or as raw bytes; readable by its owner only."""
        return cls(KeyFileSource(path, "issuer key file").get(), f"key file {path}")

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, key_file: Path | None = None,
             dev: bool = False) -> IssuerSecret:
        """The secret from exactly one source (``cardsuite.keysource``): a key file (``key_file``, which
        overrides $CARDSUITE_ISSUER_KEY_FILE), or $CARDSUITE_ISSUER_SECRET (hex), or with ``dev`` the
        development secret. Two of them at once is an error: which one was meant is not ours to guess."""
        env = os.environ if environ is None else environ
        path = key_file
        if path is None and env.get(ENV_ISSUER_KEY_FILE):
            path = Path(env[ENV_ISSUER_KEY_FILE])  # the option and its variable are one setting: the option wins
        chosen = one_source("issuer master secret", [
            Offer("--issuer-key-file" if key_file is not None else f"${ENV_ISSUER_KEY_FILE}",
                  KeyFileSource(path, "issuer key file")) if path is not None else None,
            Offer(f"${ENV_ISSUER_SECRET}", EnvironmentSource(env)) if env.get(ENV_ISSUER_SECRET) else None,
            Offer("--dev-keys", DevelopmentSource({ENV_ISSUER_SECRET: _DEV_SECRET})) if dev else None,
        ], how=f"set {ENV_ISSUER_SECRET} (hex) or {ENV_ISSUER_KEY_FILE}, or pass --issuer-key-file; --dev-keys uses "
               "the public development secret (simulator only)")
        if isinstance(chosen.source, DevelopmentSource):
            return cls.development()
        if isinstance(chosen.source, KeyFileSource):
            return cls.from_key_file(chosen.source.path)
        return cls(chosen.source.get(ENV_ISSUER_SECRET), ENV_ISSUER_SECRET)

    # -- derivation
    def _hkdf(self, info: bytes, length: int) -> bytes:
        return HKDF(hashes.SHA256(), length, _SALT, info).derive(self._secret)

    def number_hash(self, number: CardNumber) -> bytes:
        """H(R-Card): HMAC-SHA256 of the number's ASCII digits under a key derived for this purpose."""
        key = self._hkdf(b"card number hash", 32)
        return hmac.new(key, number.digits.encode(), hashlib.sha256).digest()

    def card_keys(self, number_hash: bytes) -> IssuerKeys:
        """The card's own K_E and K_A, diversified by its number hash (HKDF-SHA256)."""
        material = self._hkdf(b"card master keys" + number_hash, 2 * KEY_LENGTH)
        return IssuerKeys(material[:KEY_LENGTH], material[KEY_LENGTH:])


def load_transport_keys(manifest: Path, environ: Mapping[str, str] | None = None, dev: bool = False) -> IssuerKeys:
    """The keys a fresh card was installed with, from exactly one source: $CARDSUITE_TRANSPORT_KEYS (hex
    K_E ‖ K_A), or with ``dev`` the simulated cards' development keys from the manifest."""
    env = os.environ if environ is None else environ
    offers = [Offer(f"${ENV_TRANSPORT_KEYS}", EnvironmentSource(env)) if env.get(ENV_TRANSPORT_KEYS) else None]
    if dev:
        development = manifest_transport_keys(manifest)
        offers.append(Offer("--dev-keys", DevelopmentSource({ENV_TRANSPORT_KEYS: development.enc + development.mac})))
    chosen = one_source("transport keys for a fresh card", offers,
                        how=f"set {ENV_TRANSPORT_KEYS} (hex K_E ‖ K_A); --dev-keys uses the simulated cards' "
                        "development keys")
    try:
        return IssuerKeys.from_install_params(chosen.source.get(ENV_TRANSPORT_KEYS))
    except ValueError as exc:
        raise ConfigurationError(f"{ENV_TRANSPORT_KEYS}: {exc}") from None


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class AuthorisationRequest:
    """What the merchant (PG) sends the issuer chosen by IIN ([P001] step 6): the client and item
    information, V-Card it computed from PKC and H(R-Card), and σ with the card's signature."""

    merchant_id: bytes
    iin: str
    client_info: bytes
    item: bytes
    amount: int
    ts_m: int
    counter: int
    v_card: bytes
    sigma: bytes
    signature: bytes

    @classmethod
    def for_payment(cls, sigma: Sigma, signature: bytes, v_card: bytes) -> AuthorisationRequest:
        return cls(sigma.merchant_id, sigma.iin, sigma.holder, sigma.item, sigma.amount, sigma.ts_m, sigma.counter,
                   v_card, sigma.raw, signature)


@dataclass(frozen=True)
class AuthorisationResponse:
    approved: bool
    reason: str  # "approved" or a DenyReason value
    detail: str
    auth_code: str | None = None

    @classmethod
    def deny(cls, reason: DenyReason, detail: str) -> AuthorisationResponse:
        return cls(False, reason.value, detail)


@dataclass(frozen=True)
class IssuedCard:
    """The result of issuance. ``number`` lives in memory only (the issuer stores its hash)."""

    account_id: int
    card_id: int
    number: CardNumber = field(repr=False)
    masked: str
    holder_info: bytes
    pkc: bytes


@dataclass(frozen=True)
class Enrolment:
    account_id: int
    card_id: int
    masked: str
    v_card: bytes


def holder_info(card_id: int, holder: str) -> bytes:
    """The client info a card signs in σ: the issuer's client reference, then as much of the name as fits."""
    info = f"C{card_id:07d} {holder}".encode()
    while len(info) > HOLDER_MAX:
        holder = holder[:-1]
        info = f"C{card_id:07d} {holder}".encode()
    return info


def _check_selected(client: WalletClient, selected: WalletLifeCycle | None) -> None:
    """A state the caller read counts only inside the flow that read it (outside, another program's
    command may have come between)."""
    if selected is not None and not client.transport.in_flow:
        raise IssuerError("a wallet state read before is only valid inside the flow that read it")


def _check_limits(limits: Limits) -> None:
    if not 0 < limits.step_up <= limits.max_payment <= limits.max_balance <= 0xFFFFFFFF:
        raise IssuerError("limits must satisfy 0 < step-up threshold ≤ max per payment ≤ max balance")


# ---------------------------------------------------------------- the issuer


class Issuer:
    """One issuer (one IIN) on a registry file."""

    def __init__(self, registry: WalletStore, secret: IssuerSecret, iin: str = DEFAULT_IIN) -> None:
        self.registry = registry
        self.secret = secret
        self.iin = check_iin(iin)
        key = f"issuer:{iin}:kcv"
        with registry.transaction():
            stored = registry.meta(key)
            if stored is None:
                registry.set_meta(key, secret.check_value)
            elif not hmac.compare_digest(stored, secret.check_value):
                raise ConfigurationError(
                    f"{registry.path} belongs to issuer {iin} with another master secret (key check value "
                    f"{stored}, given {secret.check_value} from {secret.source})")

    # -- lookups
    def _account(self, account_id: int):
        account = self.registry.account(account_id)
        if account is None:
            raise IssuerError(f"no account {account_id}")
        return account

    def _current_card(self, account_id: int) -> CardRow:
        self._account(account_id)
        card = self.registry.current_card(account_id)
        if card is None or card.iin != self.iin:
            raise IssuerError(f"account {account_id} has no card of issuer {self.iin}")
        return card

    def card_keys(self, card: CardRow) -> IssuerKeys:
        return self.secret.card_keys(card.number_hash)

    def _session(self, client: WalletClient, card: CardRow) -> None:
        """Authenticates the card in the reader as this card (its diversified keys) and opens a session."""
        client.select()
        try:
            client.open_issuer_session(self.card_keys(card))
        except (SecureMessagingError, StatusError) as exc:
            if isinstance(exc, StatusError) and exc.sw not in (SW_KEY_VERSION, SW_AUTH_FAILED):
                raise
            raise IssuerError(f"the card in the reader is not card {card.masked} of account {card.account_id} "
                              f"({exc})") from None

    # -- issuance
    def new_number(self, length: int = 16) -> CardNumber:
        for _ in range(100):
            number = CardNumber.generate(self.iin, length)
            if self.registry.card_by_number_hash(self.secret.number_hash(number)) is None:
                return number
        raise IssuerError(f"no free card number under IIN {self.iin} after 100 tries")

    def issue(self, client: WalletClient, transport_keys: IssuerKeys, *, holder: str, limits: Limits, pin: str,
              puk: str, number: CardNumber | None = None, account_id: int | None = None,
              chip: str | None = None, selected: WalletLifeCycle | None = None,
              challenged: Challenged | None = None) -> IssuedCard:
        """A new card: a fresh number (or ``number``), recorded, personalised and activated. With
        ``account_id`` the card replaces the account's current card (which then stops being authorised).
        ``chip`` (the CPLC identity) lets a later run find the record if this one is stopped part-way.
        ``selected``, ``challenged``: see complete()."""
        _check_limits(limits)
        _check_selected(client, selected)
        if number is None:
            number = self.new_number()
        elif number.iin != self.iin:
            raise IssuerError(f"card number {number.masked} is not under this issuer's IIN {self.iin}")
        number_hash = self.secret.number_hash(number)
        if self.registry.card_by_number_hash(number_hash) is not None:
            raise IssuerError(f"card number {number.masked} is already issued")
        keys = self.secret.card_keys(number_hash)
        # PIN and PUK format checked before anything is recorded or sent
        Personalisation(self.iin, number_hash, b"C", limits, pin, puk, keys).encode()
        # Write-ahead: the card is committed as 'personalising' before PERSONALISE goes out. A host stopped
        # after PERSONALISE and before a later commit would otherwise leave a card whose keys and H(R-Card)
        # come from a number nobody recorded: never activated, credited or replaced. ``complete`` finishes it.
        with self.registry.transaction():
            if account_id is None:
                account_id = self.registry.add_account(holder)
            else:
                holder = self._account(account_id).holder
            card_id = self.registry.add_card(account_id, iin=self.iin, masked=number.masked,
                                             number_hash=number_hash, holder_info=secrets.token_bytes(16),
                                             limits=(limits.max_balance, limits.max_payment, limits.step_up),
                                             state="personalising", chip=chip, instance=client.aid)
            info = holder_info(card_id, holder)
            self.registry.set_holder_info(card_id, info)
        card = self.registry.card(card_id)
        assert card is not None
        pkc = self.complete(client, card, transport_keys, pin=pin, puk=puk, selected=selected, challenged=challenged)
        log.info("issued card %s (card %d) for account %d", number.masked, card_id, account_id)
        return IssuedCard(account_id, card_id, number, number.masked, info, pkc)

    def pending_on(self, chip: str, instance: bytes) -> CardRow | None:
        """The card recorded as being personalised onto this chip's wallet instance and not finished."""
        return next((c for c in self.registry.cards_on_chip(chip, instance) if c.pending and c.iin == self.iin),
                    None)

    def complete(self, client: WalletClient, card: CardRow, transport_keys: IssuerKeys, *, pin: str,
                 puk: str, selected: WalletLifeCycle | None = None, challenged: Challenged | None = None) -> bytes:
        """Takes a card recorded as 'personalising' to issued, from wherever the card got to: INSTALLED gets
        PERSONALISE (PERSONALISE is atomic on the card: nothing half-written), PERSONALISED is authenticated
        with the card's own keys and activated, ACTIVE only needs the record. Then the record is marked
        personalised and the account's previous card replaced, in one transaction. Returns PKC.
        ``selected``: the state the caller has just read (select_and_status) inside a flow it still holds,
        nothing sent to the card since: not read again (a relayed card: one round trip less); ``challenged``:
        the INITIALIZE UPDATE answered in that run (select_status_and_challenge), which opens PERSONALISE's
        session (one more round trip less)."""
        if not card.pending:
            raise IssuerError(f"card {card.masked} is {card.state}, not being personalised")
        keys = self.card_keys(card)
        _check_selected(client, selected)
        with client.flow():  # no other program's command between reading the state and acting on it
            state = selected if selected is not None else client.select_and_status().state
            if state == WalletLifeCycle.INSTALLED:
                limits = Limits(card.max_balance, card.max_payment, card.step_up)
                perso = Personalisation(card.iin, card.number_hash, card.holder_info, limits, pin, puk, keys)
                pkc = client.provision(transport_keys, perso, challenged=challenged if selected is not None else None)
            elif state in (WalletLifeCycle.PERSONALISED, WalletLifeCycle.ACTIVE):
                if state == WalletLifeCycle.PERSONALISED:
                    self._session(client, card)  # fails clearly if the card holds another card's keys
                    client.activate()
                pkc = client.get_public_key()
            else:
                raise IssuerError(f"the wallet in the reader is {state.name}: card {card.masked} of account "
                                  f"{card.account_id} cannot be finished on it")
        with self.registry.transaction():
            previous = self.registry.current_card(card.account_id)
            self.registry.set_card_state(card.id, "personalised")
            if previous is not None and previous.id != card.id:
                self.registry.set_card_state(previous.id, "replaced")
        return pkc

    # -- enrolment ([P002]): identity proofing and binding, apart from any later authentication
    def enrol(self, client: WalletClient, account_id: int, *, evidence: str, pin: str) -> Enrolment:
        """Binds the account's card: identity proofing recorded, the card authenticated with its own keys,
        the PIN verified by the holder, PKC read and V-Card = H(PKC ‖ H(R-Card)) stored."""
        evidence = evidence.strip()
        if not evidence:
            raise IssuerError("enrolment needs the identity proofing evidence (what was checked, by whom)")
        account = self._account(account_id)
        if account.status != "active":
            raise IssuerError(f"account {account_id} is {account.status}: no enrolment")
        card = self._current_card(account_id)
        if card.state == "enrolled":
            raise IssuerError(f"card {card.masked} of account {account_id} is already enrolled")
        with client.flow():
            self._session(client, card)  # possession: the card proves it holds this card's keys
            client.verify_pin(pin)  # knowledge: the holder proves the PIN
            pkc = client.get_public_key()
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pkc)  # a valid P-256 point
        v_card = hashlib.sha256(pkc + card.number_hash).digest()
        with self.registry.transaction():
            self.registry.record_proofing(account_id, evidence)
            self.registry.bind_card(card.id, pkc, v_card)
        log.info("enrolled card %s of account %d", card.masked, account_id)
        return Enrolment(account_id, card.id, card.masked, v_card)

    # -- money and status
    def credit(self, client: WalletClient, account_id: int, amount: int, reference: str = "") -> int:
        """Loads ``amount`` onto the account's enrolled card through the secure messaging; returns the
        total credited so far."""
        if amount <= 0:
            raise IssuerError("a credit amount is positive")
        account = self._account(account_id)
        if account.status != "active":
            raise IssuerError(f"account {account_id} is {account.status}: no credit")
        card = self._current_card(account_id)
        if card.state != "enrolled":
            raise IssuerError(f"card {card.masked} is not enrolled: enrol it before crediting")
        ref = (reference or f"CR{secrets.token_hex(3).upper()}").encode()
        if len(ref) > 8 or not reference.isascii():
            raise IssuerError("a credit reference has at most 8 ASCII characters")
        ref = ref.ljust(8, b" ")
        with client.flow(), self.registry.transaction():
            self._session(client, card)
            self.registry.add_credit(card.id, amount, ref)
            try:
                client.credit(amount, reference=ref)
            except StatusError as exc:
                if exc.sw == SW_CONDITIONS:
                    raise IssuerError(f"the card refused the credit of {amount}: it would exceed its maximum "
                                      f"balance of {card.max_balance}") from None
                raise
            total = self.registry.credited(card.id)
        log.info("credited %d to account %d", amount, account_id)
        return total

    def block(self, account_id: int, reason: str, client: WalletClient | None = None) -> None:
        """Puts the account on the blacklist; with ``client`` also blocks the card itself."""
        account = self._account(account_id)
        if account.status == "closed":
            raise IssuerError(f"account {account_id} is closed")
        with self.registry.transaction():
            self.registry.set_account_status(account_id, "blocked")
            self.registry.blacklist(account_id, reason or "blocked by the issuer")
            if client is not None:
                with client.flow():
                    self._session(client, self._current_card(account_id))
                    client.block()
        log.info("account %d blacklisted", account_id)

    def unblock(self, account_id: int, client: WalletClient | None = None) -> None:
        account = self._account(account_id)
        if account.status != "blocked":
            raise IssuerError(f"account {account_id} is {account.status}, not blocked")
        with self.registry.transaction():
            self.registry.set_account_status(account_id, "active")
            self.registry.lift_blacklist(account_id)
            if client is not None:
                with client.flow():
                    self._session(client, self._current_card(account_id))
                    client.unblock()
        log.info("account %d taken off the blacklist", account_id)

    # -- authorisation ([P001] steps 7-8)
    def authorise(self, request: AuthorisationRequest) -> AuthorisationResponse:
        """Approve or deny; every decision is recorded."""
        response, card = self._decide(request)
        with self.registry.transaction():
            if response.approved and card is not None:
                self.registry.advance_counter(card.id, request.counter)
            self.registry.add_authorisation(card.id if card else None, request, response.approved, response.reason,
                                            response.auth_code)
        log.info("authorisation %s for %s: %s", "approved" if response.approved else "denied",
                 card.masked if card else "unknown card", response.reason)
        return response

    def _decide(self, request: AuthorisationRequest) -> tuple[AuthorisationResponse, CardRow | None]:
        deny = AuthorisationResponse.deny
        if request.iin != self.iin:
            return deny(DenyReason.WRONG_ISSUER, f"IIN {request.iin} is not issuer {self.iin}"), None
        card = self.registry.card_by_holder_info(request.client_info)
        if card is None or card.iin != self.iin:
            return deny(DenyReason.UNKNOWN_CARD, "no card with this client info"), None
        if card.state == "replaced":
            return deny(DenyReason.CARD_REPLACED, f"card {card.masked} was replaced by a newer card"), card
        if card.state != "enrolled" or card.v_card is None or card.pkc is None:
            return deny(DenyReason.NOT_ENROLLED, f"card {card.masked} is not enrolled"), card
        account = self._account(card.account_id)
        listed = self.registry.blacklisted(card.account_id)
        if account.status != "active" or listed is not None:
            why = listed or account.status
            return deny(DenyReason.BLOCKED, f"account {card.account_id} is blacklisted: {why}"), card
        if not hmac.compare_digest(request.v_card, card.v_card):
            return deny(DenyReason.BINDING_BROKEN, "V-Card does not match the enrolled card (other key pair or "
                        "card number)"), card
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), card.pkc)
        try:
            public_key.verify(request.signature, request.sigma, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return deny(DenyReason.BAD_SIGNATURE, "σ is not signed by the enrolled card's key"), card
        try:
            sigma = Sigma.parse(request.sigma)
        except WalletError as exc:
            return deny(DenyReason.MISMATCH, str(exc)), card
        claimed = (request.merchant_id, request.iin, request.client_info, request.item, request.amount,
                   request.ts_m, request.counter)
        signed = (sigma.merchant_id, sigma.iin, sigma.holder, sigma.item, sigma.amount, sigma.ts_m, sigma.counter)
        if claimed != signed:
            return deny(DenyReason.MISMATCH, "the request does not match the signed σ"), card
        if sigma.counter <= card.last_counter:
            return deny(DenyReason.REPLAYED, f"transaction counter {sigma.counter} already seen "
                        f"(last {card.last_counter})"), card
        if sigma.amount > card.max_payment:
            return deny(DenyReason.LIMIT, f"amount {sigma.amount} above the card's limit {card.max_payment}"), card
        code = secrets.token_hex(3).upper()
        return AuthorisationResponse(True, "approved", f"card {card.masked}", code), card
