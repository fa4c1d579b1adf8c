"""The wallet's personaliser for a deploy ([P000]): what a card profile's ``[personalise] kind = "wallet"``
does to an installed wallet instance. The deploy finds it by that kind (cardsuite.deploy.personalisers) and
knows nothing else of the wallet.

Write-ahead, as the issuer does it (cardsuite.wallet.issuer): the issuer's database commits the card (state
'personalising', with the chip and instance it goes onto) before PERSONALISE is sent and marks it done once
the card is active. So a wallet counts as personalised only when the card says ACTIVE (or later) *and* the
database holds a finished record of it on this chip; a pending record is finished from wherever the card got
to; a personalised wallet no database knows is refused with what a person has to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from cardsuite.apdu import StatusError
from cardsuite.errors import CardsuiteError
from cardsuite.transport.base import Transport
from cardsuite.wallet.card import Limits, WalletClient, WalletLifeCycle
from cardsuite.wallet.issuer import Issuer, IssuerSecret
from cardsuite.wallet.sm import IssuerKeys
from cardsuite.wallet.store import CardRow, WalletStore

__all__ = ["Limits", "PersonalisationError", "WalletPersonaliser", "WalletSpec", "wallet_state"]  # what deploy uses

log = logging.getLogger(__name__)

_ISSUED_STATES = (WalletLifeCycle.ACTIVE, WalletLifeCycle.BLOCKED, WalletLifeCycle.TERMINATED)


class PersonalisationError(CardsuiteError):
    """The wallet cannot be personalised as the profile asks; the message says what a person has to do."""


class WalletSpec(Protocol):
    """The profile's ``[personalise]`` table for a wallet (cardsuite.deploy.profiles parses and checks it)."""

    holder: str
    limits: Limits
    pin_env: str
    puk_env: str
    issuer_secret: str  # "development" or "environment"
    iin: str


def wallet_state(transport: Transport, aid: bytes) -> WalletLifeCycle | None:
    """The wallet's life cycle state (SELECT, GET STATUS), None when it cannot be read."""
    try:
        client = WalletClient(transport, aid)
        return client.select_and_status().state
    except (StatusError, CardsuiteError, ValueError) as exc:
        log.info("cannot read the wallet's state at %s: %s", aid.hex().upper(), exc)
        return None


class WalletPersonaliser:
    """Issues the card of one wallet instance through the issuer, recorded in the issuer's database.

    ``secret(name, what)`` reads a secret the profile names (PIN, PUK) from the environment, or raises
    ConfigurationError; ``env`` is where the issuer master secret comes from; ``simulated`` allows the
    public development issuer secret."""

    kind = "wallet"  # a profile's [personalise] kind

    def __init__(self, *, spec: WalletSpec, name: str, instance: bytes, params: bytes, chip: str, simulated: bool,
                 database: Path, secret: Callable[[str, str], str], env: Mapping[str, str] | None = None) -> None:
        self.spec = spec
        self.name = name
        self.instance = instance
        self.params = params
        self.chip = chip
        self.simulated = simulated
        self.database = database
        self.secret = secret
        self.env = env

    # -- the plan: read only
    def plan(self, transport: Transport, *, installed: bool, read_only: bool) -> tuple[bool, str]:
        """Done, and what the plan says: done only when the card is issued and the issuer's record is
        finished. Reads the card only when the instance is installed, and the database only when it exists
        (``read_only``: a plan, which neither creates nor migrates it)."""
        state = wallet_state(transport, self.instance) if installed else None
        record = self._record(read_only) if installed else None
        return self._describe(state, record)

    def _record(self, read_only: bool) -> CardRow | None:
        """The issuer's newest record of this instance on this chip."""
        if not self.database.is_file():
            return None
        with WalletStore(self.database, read_only=read_only) as wallets:
            return next(iter(wallets.cards_on_chip(self.chip, self.instance)), None)

    def _describe(self, state: WalletLifeCycle | None, record: CardRow | None) -> tuple[bool, str]:
        spec = self.spec
        on_card = f"wallet {state.name} on the card" if state is not None else "wallet state unreadable"
        if record is not None and record.pending:
            return False, f"finish card {record.masked} of account {record.account_id} (recorded, {on_card})"
        if state in _ISSUED_STATES and record is not None:
            return True, f"wallet {state.name}, card {record.masked} of account {record.account_id}"
        if state is not None and state != WalletLifeCycle.INSTALLED:
            return False, f"{on_card} but not in the issuer's database: needs a person (the deploy says what)"
        return False, (f"wallet for {spec.holder}, IIN {spec.iin}, limits {spec.limits.max_balance}/"
                       f"{spec.limits.max_payment}/{spec.limits.step_up}")

    # -- the step
    def personalise(self, transport: Transport, *, before_changes: Callable[[], None] | None = None) -> str:
        """Issues the card, or finishes one whose personalisation stopped part-way; the step's detail.
        ``before_changes``: called after the wallet's state is read, before the issuer's first command."""
        ready = before_changes or (lambda: None)
        spec = self.spec
        if spec.issuer_secret == "development":
            if not self.simulated:
                raise PersonalisationError(f"application {self.name}: the public development issuer secret is for "
                                           "simulated cards; set issuer_secret = \"environment\" for a real card")
            issuer_secret = IssuerSecret.development()
        else:
            issuer_secret = IssuerSecret.load(self.env)
        try:
            transport_keys = IssuerKeys.from_install_params(self.params)
        except ValueError as exc:
            raise PersonalisationError(f"application {self.name}: {exc}") from None
        pin = self.secret(spec.pin_env, f"the PIN of {self.name}")
        puk = self.secret(spec.puk_env, f"the PUK of {self.name}")
        db = self.database
        client = WalletClient(transport, self.instance)
        # one flow: the state read here is the one the issuer acts on (it does not read it again)
        with WalletStore(db) as registry, client.flow():
            issuer = Issuer(registry, issuer_secret, spec.iin)
            pending = issuer.pending_on(self.chip, self.instance)
            if pending is not None:  # a run stopped between the record and the card's activation
                ready()
                issuer.complete(client, pending, transport_keys, pin=pin, puk=puk)
                return (f"card {pending.masked}, account {pending.account_id} in {db} "
                        "(finished a personalisation stopped part-way)")
            status, challenged = client.select_status_and_challenge(transport_keys)  # one run
            state = status.state
            if state != WalletLifeCycle.INSTALLED:
                raise PersonalisationError(
                    f"application {self.name}: the wallet {self.instance.hex().upper()} on card {self.chip} is "
                    f"{state.name}, but the issuer's database {db} has no record of it on this card (personalised "
                    "through another database, or before cardsuite recorded cards ahead of personalising them). "
                    "Deploy with --wallet-db pointing at the database that issued it; if none has it, nobody "
                    "holds its keys: delete the instance (cardsuite gp delete AID) and deploy again to issue it "
                    "afresh")
            ready()
            issued = issuer.issue(client, transport_keys, holder=spec.holder, limits=spec.limits, pin=pin, puk=puk,
                                  chip=self.chip, selected=state, challenged=challenged)
        return f"card {issued.masked}, account {issued.account_id} in {db}"
