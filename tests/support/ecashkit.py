"""Shared set-up for the e-cash tests: a wallet card issued and e-cash personalised, and the roles on a
throw-away database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cardsuite.ecash.card import EcashCard
from cardsuite.ecash.primitives import CaCertificate, RangeCertificate, new_reference
from cardsuite.ecash.roles import Broker, CertificateAuthority, EcashStore, Vendor
from cardsuite.transport.base import Transport
from cardsuite.wallet.card import Limits, Personalisation, WalletClient, manifest_transport_keys
from cardsuite.wallet.sm import IssuerKeys

from support import NUMBER_SECRET, PIN, PUK

SEED_COUNTS = (5000, 1000, 800, 50, 10)  # [P004]'s example certificate


@dataclass
class World:
    store: EcashStore
    ca: CertificateAuthority
    broker: Broker

    @classmethod
    def create(cls, path: Path) -> World:
        store = EcashStore.open(path)
        ca = CertificateAuthority(store)
        return cls(store, ca, Broker(store, ca.public_point))

    def vendor(self, name: str) -> Vendor:
        return Vendor(self.store, name, self.ca.public_point, self.broker.signature_point)


@dataclass
class Customer:
    """A card with an e-cash purse, registered with the CA and holding range certificates."""

    wallet: WalletClient
    card: EcashCard
    issuer: IssuerKeys
    ca_cert: CaCertificate
    ranges: list[RangeCertificate]

    def reselect(self) -> None:
        self.wallet.select()
        self.wallet.verify_pin(PIN)

    def pay(self, vendor: Vendor, amount: int):
        reference = new_reference()
        token = self.card.pay(amount, reference, vendor.public_point)
        return token, vendor.accept(self.ca_cert, self.ranges, token, amount, reference)


def issue_wallet(transport: Transport, project) -> tuple[WalletClient, IssuerKeys]:
    issuer = IssuerKeys.generate()
    client = WalletClient(transport)
    client.provision(manifest_transport_keys(project.manifest),
                     Personalisation.for_card("4111111111111111", secret=NUMBER_SECRET,
                                              holder=b"e-cash", limits=Limits(10_000, 5_000, 5_000), pin=PIN, puk=PUK,
                                              keys=issuer))
    return client, issuer


def new_customer(transport: Transport, project, world: World, identity: str = "Hong Gildong",
                 counts: tuple[int, ...] = SEED_COUNTS) -> Customer:
    client, issuer = issue_wallet(transport, project)
    client.open_issuer_session(issuer)
    card = EcashCard(client)
    card.personalise(world.broker.signature_point, world.broker.dh_point)
    ca_cert = world.ca.register(identity, card.public_value())
    cert = world.broker.buy(ca_cert, counts)
    card.load_range(cert)
    client.verify_pin(PIN)
    return Customer(client, card, issuer, ca_cert, [cert])
