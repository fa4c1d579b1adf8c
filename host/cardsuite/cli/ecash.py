"""`cardsuite ecash …`: divisible prepaid e-cash ([P004]) from the command line, every role's records in
the wallet's SQLite file (``--db``, env CARDSUITE_DB; tables ``ecash_*``).

    cardsuite ecash personalise --account ID     issuer: the broker's keys onto the account's card
    cardsuite ecash register --identity NAME     CA: a PID and S_CA(PID ‖ g^c) for the card's e-cash key
    cardsuite ecash buy [--counts N1,N10,N100,N1000,N10000 | --amount A]
                                                 broker: prepayment → range certificate, loaded on the card
    cardsuite ecash pay AMOUNT --vendor NAME     card pays the vendor offline; the vendor verifies
    cardsuite ecash deposit --vendor NAME        vendor → broker: tokens checked, vendor paid or cheating reported
    cardsuite ecash trace [--report ID]          broker's report + CA's records → identity (lists reports without ID)
    cardsuite ecash status                       the purse on the card (PIN)
    cardsuite ecash story                        the whole story on one simulated card

`--card sim` is a fresh card per process: a flow over several commands needs `--card vpcd` (with `invoke
sim` running) or a real card; `ecash story` runs everything on one card. The PIN comes from CARDSUITE_PIN
or a prompt, never from argv.
"""

from __future__ import annotations

import argparse
import os
import secrets
from contextlib import ExitStack
from pathlib import Path

from cardsuite.cli.common import AddOptions, Connect, read_secret
from cardsuite.cli.wallet import default_db
from cardsuite.ecash.card import EcashCard
from cardsuite.ecash.primitives import (
    UNITS,
    EcashError,
    SoftPurse,
    Token,
    TokenRow,
    chain_forward,
    counts_for,
    new_reference,
    payword,
)
from cardsuite.ecash.roles import (
    Broker,
    CertificateAuthority,
    CustomerRecords,
    DepositResult,
    EcashStore,
    Vendor,
    trace,
)
from cardsuite.errors import CardsuiteError
from cardsuite.project import Project
from cardsuite.settings import ENV_DB, ENV_IIN, ENV_PIN
from cardsuite.transport.base import Transport
from cardsuite.wallet.card import Limits, Personalisation, WalletClient, manifest_transport_keys
from cardsuite.wallet.sm import IssuerKeys


class _Roles:
    """The store and every role on it; the card when asked."""

    def __init__(self, args: argparse.Namespace, connect: Connect) -> None:
        self.args = args
        self.connect = connect
        self.store = EcashStore.open(args.db)
        self.ca = CertificateAuthority(self.store)
        self.broker = Broker(self.store, self.ca.public_point)
        self.customer = CustomerRecords(self.store)
        self.transport: Transport | None = None
        self._flow = ExitStack()

    def vendor(self, name: str) -> Vendor:
        return Vendor(self.store, name, self.ca.public_point, self.broker.signature_point)

    def card(self, pin: bool = False) -> EcashCard:
        self.transport = self.connect(self.args)
        # one flow from SELECT (and VERIFY) to the end of the command: no other program between them
        self._flow.enter_context(self.transport.exclusive())
        client = WalletClient(self.transport)
        client.select()
        if pin:
            client.verify_pin(read_secret(ENV_PIN, "PIN"))
        return EcashCard(client)

    def __enter__(self) -> _Roles:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._flow.close()  # resets the card when the flow verified the PIN
        finally:
            if self.transport is not None:
                self.transport.disconnect()
            self.store.close()


def _amount(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""), 10)
    except ValueError:
        raise EcashError(f"not an amount: {text!r}") from None
    if not 0 < value <= 0xFFFFFFFF:
        raise EcashError(f"an amount is 1 to {0xFFFFFFFF}, got {value}")
    return value


def _counts(text: str) -> tuple[int, ...]:
    parts = text.split(",")
    if len(parts) != len(UNITS) or not all(p.strip().isdigit() for p in parts):
        raise EcashError("--counts takes five whole numbers: units of 1, 10, 100, 1000 and 10000")
    return tuple(int(p) for p in parts)


def _describe(token: Token) -> str:
    return " + ".join(f"{UNITS[r.unit]:,} up to count {r.count}" for r in token.rows)


# ---------------------------------------------------------------- commands


def cmd_personalise(args: argparse.Namespace, connect: Connect) -> int:
    from cardsuite.wallet.issuer import Issuer, IssuerSecret

    with _Roles(args, connect) as roles:
        registry = roles.store.registry
        issuer = Issuer(registry, IssuerSecret.load(key_file=args.issuer_key_file, dev=args.dev_keys), args.iin)
        card_row = registry.current_card(args.account)
        if card_row is None:
            raise EcashError(f"account {args.account} has no current card")
        roles.transport = connect(args)
        client = WalletClient(roles.transport)
        client.select()
        client.open_issuer_session(issuer.card_keys(card_row))
        EcashCard(client).personalise(roles.broker.signature_point, roles.broker.dh_point)
    print(f"card {card_row.masked}: broker keys set, e-cash key generated on the card")
    return 0


def cmd_register(args: argparse.Namespace, connect: Connect) -> int:
    with _Roles(args, connect) as roles:
        public_value = roles.card().public_value()
        cert = roles.ca.register(args.identity, public_value)
        roles.customer.save_ca_certificate(cert)
    print(f"registered with the CA: PID {cert.pid.hex()} (only the CA links it to {args.identity!r})")
    return 0


def cmd_buy(args: argparse.Namespace, connect: Connect) -> int:
    counts = _counts(args.counts) if args.counts else counts_for(_amount(args.amount))
    with _Roles(args, connect) as roles:
        ca_cert = roles.customer.ca_certificate()
        cert = roles.broker.buy(ca_cert, counts)
        roles.card().load_range(cert)
        roles.customer.save_range(cert)
    units = ", ".join(f"{n}×{u:,}" for n, u in zip(counts, UNITS, strict=True))
    print(f"range certificate SN {cert.body.sn} for {cert.body.value:,} ({units}) loaded on the card")
    return 0


def cmd_pay(args: argparse.Namespace, connect: Connect) -> int:
    amount = _amount(args.amount)
    with _Roles(args, connect) as roles:
        vendor = roles.vendor(args.vendor)
        ca_cert = roles.customer.ca_certificate()
        reference = new_reference()
        token = roles.card(pin=True).pay(amount, reference, vendor.public_point)
        receipt = vendor.accept(ca_cert, roles.customer.ranges(ca_cert.pid), token, amount, reference)
    print(f"paid {amount:,} to {args.vendor}: {_describe(token)}; vendor verified, token {receipt.token_id} kept")
    return 0


def cmd_deposit(args: argparse.Namespace, connect: Connect) -> int:
    with _Roles(args, connect) as roles:
        vendor = roles.vendor(args.vendor)
        results = vendor.deposit(roles.broker)
        for result in results:
            if result.accepted:
                print(f"token for {result.token.amount:,}: paid {result.paid:,}")
            else:
                print(f"token for {result.token.amount:,}: REFUSED, {result.refused} ({result.detail}); "
                      f"report {result.report_id}")
        print(f"{args.vendor}: {len(results)} token(s) deposited; paid by the broker in all: "
              f"{roles.broker.vendor_paid(vendor.public_point):,}")
    return 0


def cmd_trace(args: argparse.Namespace, connect: Connect) -> int:
    with _Roles(args, connect) as roles:
        if args.report is None:
            reports = roles.broker.reports()
            if not reports:
                print("the broker has reported nothing")
            for report_id, kind, pid, detail in reports:
                print(f"report {report_id}: {kind}, PID {pid.hex()}: {detail}")
            return 0
        kind, pid, _ = roles.broker.report(args.report)
        print(f"report {args.report} ({kind}): PID {pid.hex()} → {trace(roles.broker, roles.ca, args.report)!r}")
    return 0


def cmd_status(args: argparse.Namespace, connect: Connect) -> int:
    with _Roles(args, connect) as roles:
        card = roles.card(pin=True)
        status = card.status()
        print(f"purse {status.state.name}, PID {status.pid.hex()}, last SN {status.last_sn}, vendors "
              f"{status.vendors_used}/{status.max_vendors}")
        for unit, limit, spent in zip(UNITS, status.limits, status.spent, strict=True):
            print(f"  {unit:>6,}: {spent} of {limit} spent")
    return 0


def cmd_story(args: argparse.Namespace, connect: Connect) -> int:
    """Register, buy, pay two vendors in several amounts, deposit, a double spend and a forgery caught."""
    from cardsuite.wallet.issuer import IssuerSecret

    with _Roles(args, connect) as roles:
        roles.transport = connect(args)
        client = WalletClient(roles.transport)
        pin, issuer_keys = f"{secrets.randbelow(10**6):06d}", IssuerKeys.generate()
        client.provision(manifest_transport_keys(Project.locate().manifest),
                         Personalisation.for_card("4111111111111111", secret=IssuerSecret.generate("e-cash story"),
                                                  holder=b"e-cash story", pin=pin, puk="12345678", keys=issuer_keys,
                                                  limits=Limits(100_000, 50_000, 50_000)))
        client.open_issuer_session(issuer_keys)
        card = EcashCard(client)
        card.personalise(roles.broker.signature_point, roles.broker.dh_point)
        print("1. issuer: wallet card issued; broker keys personalised; the card made its e-cash key c")
        identity = args.identity
        ca_cert = roles.ca.register(identity, card.public_value())
        print(f"2. CA: {identity!r} registered as PID {ca_cert.pid.hex()}; S_CA(PID ‖ g^c) issued")
        ranges = [roles.broker.buy(ca_cert, (5000, 1000, 800, 50, 10))]
        card.load_range(ranges[0])
        print(f"3. broker: prepaid {ranges[0].body.value:,}; range certificate SN {ranges[0].body.sn} "
              "(5000×1, 1000×10, 800×100, 50×1,000, 10×10,000) verified and loaded by the card")
        try:
            card.load_range(ranges[0])
        except CardsuiteError as exc:
            print(f"   the same certificate again: card refuses ({exc})")
        client.verify_pin(pin)
        bakery, books = roles.vendor("bakery"), roles.vendor("bookshop")
        for vendor, amount in ((bakery, 20_430), (books, 1_234), (bakery, 3_500), (books, 99_999), (bakery, 7)):
            reference = new_reference()
            token = card.pay(amount, reference, vendor.public_point)
            vendor.accept(ca_cert, ranges, token, amount, reference)
            print(f"4. paid {vendor.name} {amount:,} offline: {_describe(token)}; vendor verified the paywords")
            if vendor is bakery and amount == 20_430:
                try:
                    vendor.accept(ca_cert, ranges, token, amount, reference)
                except EcashError as exc:
                    print(f"   the same token again at {vendor.name}: refused ({exc})")
        # A vendor knows the roots, so it can make paywords, but not the token certificate.
        forged = _forge(bakery, roles, card)
        bakery.keep(forged, 10_000)
        print("5. the bakery forges a token for one more 10,000 (right payword, made-up certificate)")
        for vendor in (bakery, books):
            for result in vendor.deposit(roles.broker):
                verdict = f"paid {result.paid:,}" if result.accepted else f"REFUSED: {result.refused}"
                print(f"6. {vendor.name} deposits a token for {result.token.amount:,}: {verdict}")
        # A cloned card (its secrets in software) spends the same 10,000s again at the bookshop.
        cheat = _clone_spends_again(roles, books)
        for name, result in cheat:
            verdict = f"paid {result.paid:,}" if result.accepted else f"REFUSED: {result.refused} ({result.detail})"
            print(f"7. a cloned card spends the same 10,000 at the {name}; the {name} deposits: {verdict}")
            if result.report_id is not None:
                print(f"   trace report {result.report_id}: broker's PID → CA → "
                      f"{trace(roles.broker, roles.ca, result.report_id)!r}")
        status = card.status()
        print(f"8. the card: spent {status.spent} of {status.limits}; bakery paid "
              f"{roles.broker.vendor_paid(bakery.public_point):,}, bookshop paid "
              f"{roles.broker.vendor_paid(books.public_point):,}")
    return 0


def _forge(vendor: Vendor, roles: _Roles, card: EcashCard) -> Token:
    """The vendor's own chain state for 10,000s hashed one further: a valid payword, no valid certificate."""
    pid = card.status().pid
    row = roles.store.db.execute("SELECT count, state FROM ecash_vendor_chains WHERE vendor = ? AND pid = ? "
                                 "AND unit = 4", (vendor.name, pid)).fetchone()
    count, state = int(row[0]), bytes(row[1])
    rows = (TokenRow(4, count + 1, payword(chain_forward(state, 1))),)
    return Token(pid, vendor.vendor_id, new_reference(), 10_000, rows, secrets.token_bytes(32))


def _clone_spends_again(roles: _Roles, vendor: Vendor) -> list[tuple[str, DepositResult]]:
    """A customer whose purse runs in software (a cloned card) registers, buys 1 × 10,000, and spends it at
    two vendors: each vendor accepts (each sees only its own chain); the broker catches the second."""
    purse = SoftPurse(roles.broker.dh_point, honest=False)
    ca_cert = roles.ca.register("Mallory (cloned card)", purse.public_value)
    cert = roles.broker.buy(ca_cert, (0, 0, 0, 0, 1))
    purse.load_range(cert, roles.broker.signature_point)
    other = roles.vendor("kiosk")
    results = []
    for target in (other, vendor):
        reference = new_reference()
        token = purse.pay(10_000, reference, target.public_point)
        target.accept(ca_cert, [cert], token, 10_000, reference)
        results.extend((target.name, result) for result in target.deposit(roles.broker))
    return results


# ---------------------------------------------------------------- parser


def register(subparsers: argparse._SubParsersAction, add_card_options: AddOptions, connect: Connect) -> None:
    ecash = subparsers.add_parser("ecash", help="divisible prepaid e-cash: CA, broker, card, vendor",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = ecash.add_subparsers(dest="ecash_command", required=True, metavar="ECASH_COMMAND")

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        add_card_options(parser)
        parser.add_argument("--db", type=Path, default=Path(os.environ.get(ENV_DB) or default_db()),
                            help=f"the SQLite file shared with the wallet roles [env {ENV_DB}]")
        parser.set_defaults(handler=lambda args: handler(args, connect))
        return parser

    p = command("personalise", cmd_personalise, "issuer: put the broker's keys on the account's card")
    p.add_argument("--account", type=int, required=True)
    p.add_argument("--iin", default=os.environ.get(ENV_IIN, "941012"))
    p.add_argument("--dev-keys", action="store_true", help="the public development issuer secret (simulator only)")
    p.add_argument("--issuer-key-file", type=Path, metavar="PATH", help="file with the issuer master secret (hex)")

    p = command("register", cmd_register, "CA: pseudonym and certificate for the card's e-cash key")
    p.add_argument("--identity", required=True, help="the customer's real identity (kept by the CA only)")

    p = command("buy", cmd_buy, "broker: prepay and load an amount range certificate")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--counts", help="units of 1,10,100,1000,10000, e.g. 5000,1000,800,50,10 (the seed's example)")
    group.add_argument("--amount", help="a prepaid amount, split over the units by the broker's default")

    p = command("pay", cmd_pay, "pay a vendor offline (PIN)")
    p.add_argument("amount")
    p.add_argument("--vendor", required=True, help="the vendor's name (its key is made on first use)")

    p = command("deposit", cmd_deposit, "a vendor deposits its tokens with the broker")
    p.add_argument("--vendor", required=True)

    p = command("trace", cmd_trace, "trace a broker's report to an identity with the CA's records")
    p.add_argument("--report", type=int, help="report number (without: list the reports)")

    command("status", cmd_status, "the purse on the card (PIN)")

    p = command("story", cmd_story, "the whole story on one (simulated) card")
    p.add_argument("--identity", default="홍길동", help="the customer's identity for the CA")

