"""`cardsuite wallet …`: the issuer, the merchant and the cardholder from the command line, against any
transport, with the issuer's and the merchant's records in one SQLite file.

    cardsuite wallet personalise --holder NAME [--number N] [--account ID] [limits]   issue a card
    cardsuite wallet enrol --account ID --evidence TEXT     identity proofing, then bind PKC / V-Card
    cardsuite wallet credit --account ID AMOUNT             load money through the secure messaging
    cardsuite wallet pay AMOUNT --item TEXT [--merchant ID] merchant request, card signs, issuer authorises
    cardsuite wallet balance | log | status                 the cardholder's view of the card
    cardsuite wallet pin status | change | unblock
    cardsuite wallet block | unblock --account ID           the issuer's blacklist
    cardsuite wallet accounts | evidence                    what the database holds (evidence re-verified)
    cardsuite wallet demo                                   personalise → enrol → credit → pay → log on one card

`--card sim` is a fresh card in each process: a flow over several commands needs `--card vpcd` with
`invoke sim` running; `wallet demo` runs the whole flow on one card. Secrets never come from argv:
PIN from CARDSUITE_PIN, new PIN from CARDSUITE_NEW_PIN, PUK from CARDSUITE_PUK (else a prompt); the
issuer master secret from CARDSUITE_ISSUER_SECRET or a key file; transport keys from
CARDSUITE_TRANSPORT_KEYS. `--dev-keys` opts into the public development secret and the simulated
cards' transport keys. Card numbers are printed masked only.
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from cardsuite import settings
from cardsuite.cli.common import AddOptions, Connect, read_secret
from cardsuite.codec import parse_hex
from cardsuite.project import Project
from cardsuite.settings import ENV_DB, ENV_IIN, ENV_ISSUER_KEY_FILE, ENV_ISSUER_SECRET, ENV_NEW_PIN, ENV_PIN, ENV_PUK
from cardsuite.transport.base import Transport
from cardsuite.wallet.card import Limits, LogType, WalletClient, WalletError
from cardsuite.wallet.cardnumber import CardNumber
from cardsuite.wallet.issuer import DEFAULT_IIN, Issuer, IssuerSecret, load_transport_keys
from cardsuite.wallet.merchant import Merchant, PaymentRefused, item_info, merchant_id, pay_with_card, verify_evidence
from cardsuite.wallet.store import WalletStore

DEFAULT_MERCHANT = "SHOP0001"
DEFAULT_LIMITS = Limits(max_balance=1_000_000, max_payment=300_000, step_up=50_000)


# ---------------------------------------------------------------- input


def _amount(text: str) -> int:
    try:
        value = int(text.replace("_", ""), 10)
    except ValueError:
        raise WalletError(f"not an amount: {text!r}") from None
    if not 0 < value <= 0xFFFFFFFF:
        raise WalletError(f"an amount is 1 to {0xFFFFFFFF}, got {value}")
    return value


def _item(args: argparse.Namespace) -> bytes:
    if args.item_hex is not None:
        return parse_hex(args.item_hex, "--item-hex")
    return args.item.encode()


def default_db() -> Path:
    """In the state directory (settings): the issuer's records outlive the checkout and its build/."""
    return settings.wallet_db()


# ---------------------------------------------------------------- context


class _Wallet:
    """The database, the issuer (keys loaded before the card is touched) and, when asked, the card."""

    def __init__(self, args: argparse.Namespace, connect: Connect) -> None:
        self.args = args
        self.connect = connect
        self.transport: Transport | None = None
        self.registry: WalletStore | None = None

    def issuer(self) -> Issuer:
        secret = IssuerSecret.load(key_file=self.args.issuer_key_file, dev=self.args.dev_keys)
        return Issuer(self.open_registry(), secret, self.args.iin)

    def open_registry(self) -> WalletStore:
        if self.registry is None:
            self.registry = WalletStore(self.args.db)
        return self.registry

    def card(self) -> WalletClient:
        self.transport = self.connect(self.args)
        return WalletClient(self.transport)

    def __enter__(self) -> _Wallet:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.transport is not None:
            self.transport.disconnect()
        if self.registry is not None:
            self.registry.close()


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(_amount(args.max_balance), _amount(args.max_payment), _amount(args.step_up))


# ---------------------------------------------------------------- issuer commands


def cmd_personalise(args: argparse.Namespace, connect: Connect) -> int:
    number = CardNumber.parse(args.number) if args.number else None
    limits = _limits(args)
    with _Wallet(args, connect) as w:
        issuer = w.issuer()
        transport_keys = load_transport_keys(Project.locate().manifest, dev=args.dev_keys)
        pin = read_secret(ENV_PIN, "PIN", confirm=True)
        puk = read_secret(ENV_PUK, "PUK", confirm=True)
        issued = issuer.issue(w.card(), transport_keys, holder=args.holder, limits=limits, pin=pin, puk=puk,
                              number=number, account_id=args.account)
    print(f"issued card {issued.masked} (card {issued.card_id}) for account {issued.account_id}: personalised "
          "and active")
    print(f"next: cardsuite wallet enrol --account {issued.account_id} --evidence '<identity proofing>'")
    return 0


def cmd_enrol(args: argparse.Namespace, connect: Connect) -> int:
    with _Wallet(args, connect) as w:
        issuer = w.issuer()
        pin = read_secret(ENV_PIN, "PIN")
        enrolment = issuer.enrol(w.card(), args.account, evidence=args.evidence, pin=pin)
    print(f"enrolled card {enrolment.masked} to account {enrolment.account_id}: V-Card {enrolment.v_card.hex()[:16]}…")
    return 0


def cmd_credit(args: argparse.Namespace, connect: Connect) -> int:
    amount = _amount(args.amount)
    with _Wallet(args, connect) as w:
        issuer = w.issuer()
        total = issuer.credit(w.card(), args.account, amount, args.reference)
    print(f"credited {amount} to account {args.account} (credited in all: {total})")
    return 0


def cmd_block(args: argparse.Namespace, connect: Connect) -> int:
    with _Wallet(args, connect) as w:
        issuer = w.issuer()
        client = w.card() if args.on_card else None
        if args.command_name == "block":
            issuer.block(args.account, args.reason, client)
            print(f"account {args.account} blacklisted" + (" and its card blocked" if client else ""))
        else:
            issuer.unblock(args.account, client)
            print(f"account {args.account} taken off the blacklist" + (" and its card active" if client else ""))
    return 0


def cmd_accounts(args: argparse.Namespace, connect: Connect) -> int:
    with WalletStore(args.db, read_only=True) as registry:
        accounts = registry.accounts()
        if not accounts:
            print(f"no accounts in {args.db}")
        for account in accounts:
            proofed = "proofed" if account.proofing else "not proofed"
            print(f"account {account.id}: {account.holder} ({account.status}, {proofed})")
            for card in registry.cards(account.id):
                print(f"  card {card.id}: {card.masked} {card.state}, last counter {card.last_counter}, "
                      f"credited {registry.credited(card.id)}")
    return 0


def cmd_evidence(args: argparse.Namespace, connect: Connect) -> int:
    """Re-verifies every stored payment with only what is stored (what a third party can do)."""
    failures = 0
    with WalletStore(args.db, read_only=True) as registry:
        records = registry.all_evidence()
        if not records:
            print(f"no evidence in {args.db}")
        for record in records:
            who = record.merchant_id.decode(errors="replace").strip()
            try:
                sigma = verify_evidence(record)
            except Exception as exc:  # noqa: BLE001 - report each record, go on with the others
                failures += 1
                print(f"evidence {record.id}: FAILED: {exc}")
                continue
            print(f"evidence {record.id}: {sigma.amount} at {who}, TS_M {sigma.ts_m}, counter {sigma.counter}, "
                  f"auth {record.auth_code}: signature verified with the stored PKC")
    return 1 if failures else 0


# ---------------------------------------------------------------- merchant and cardholder commands


def _pay(issuer: Issuer, client: WalletClient, mid: str, order: tuple[int, bytes], pin: str):
    """A merchant on the issuer's database asks, the card pays, the merchant completes."""
    merchant = Merchant(issuer.registry, mid, {issuer.iin: issuer})
    request = merchant.request_payment(*order)
    answer = pay_with_card(client, request, pin)
    return merchant, answer, merchant.complete(answer)


def cmd_pay(args: argparse.Namespace, connect: Connect) -> int:
    amount = _amount(args.amount)
    item = _item(args)
    mid = merchant_id(args.merchant).decode()
    with _Wallet(args, connect) as w:
        issuer = w.issuer()
        pin = read_secret(ENV_PIN, "PIN")
        _, _, receipt = _pay(issuer, w.card(), mid, (amount, item), pin)
    print(f"approved: {receipt.amount} at {mid.strip()}, auth code {receipt.auth_code}, card counter "
          f"{receipt.counter}, evidence {receipt.evidence_id}")
    return 0


@contextmanager
def _holder_session(args: argparse.Namespace, connect: Connect) -> Iterator[WalletClient]:
    """The wallet selected and the PIN verified, held as one flow: no other program gets between them, and
    the card is reset after it (the PIN does not stay verified for the next program)."""
    pin = read_secret(ENV_PIN, "PIN")
    client = WalletClient(connect(args))
    try:
        with client.flow():
            client.select()
            client.verify_pin(pin)
            yield client
    finally:
        client.transport.disconnect()


def cmd_balance(args: argparse.Namespace, connect: Connect) -> int:
    with _holder_session(args, connect) as client:
        print(f"balance: {client.get_balance()}")
    return 0


def cmd_log(args: argparse.Namespace, connect: Connect) -> int:
    with _holder_session(args, connect) as client:
        _print_log(client)
    return 0


def _print_log(client: WalletClient) -> None:
    records = client.read_log()
    if not records:
        print("the log is empty")
    for number, record in enumerate(records, 1):
        kind = "payment" if record.type == LogType.PAYMENT else "credit "
        party = record.merchant_id.decode(errors="replace").strip() or record.merchant_id.hex()
        when = datetime.fromtimestamp(record.ts_m / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{number:2}. #{record.counter} {kind} {record.amount:>10} balance {record.balance:>10} "
              f"{when} UTC {party}")


def cmd_status(args: argparse.Namespace, connect: Connect) -> int:
    client = WalletClient(connect(args))
    try:
        client.select()
        status = client.status()
    finally:
        client.transport.disconnect()
    print(f"state {status.state.name}, key version {status.key_version:02X}, PIN tries {status.pin_tries}, "
          f"PUK tries {status.puk_tries}, transaction counter {status.counter}")
    return 0


def cmd_pin(args: argparse.Namespace, connect: Connect) -> int:
    action = args.pin_action
    if action == "change":
        old, new = read_secret(ENV_PIN, "PIN"), read_secret(ENV_NEW_PIN, "new PIN", confirm=True)
    elif action == "unblock":
        old, new = read_secret(ENV_PUK, "PUK"), read_secret(ENV_NEW_PIN, "new PIN", confirm=True)
    else:
        old = new = ""
    client = WalletClient(connect(args))
    try:
        with client.flow():
            client.select()
            if action == "change":
                client.change_pin(old, new)
                print("PIN changed")
            elif action == "unblock":
                client.unblock_pin(old, new)
                print("PIN unblocked and set")
            else:
                tries = client.pin_tries_left()
                print("PIN verified in this session" if tries is None else f"PIN tries left: {tries}")
    finally:
        client.transport.disconnect()
    return 0


# ---------------------------------------------------------------- the whole flow on one card


def cmd_demo(args: argparse.Namespace, connect: Connect) -> int:
    amount, large = _amount(args.amount), _amount(args.large_amount)
    limits = _limits(args)
    with _Wallet(args, connect) as w:
        issuer = w.issuer()
        registry = w.open_registry()
        transport_keys = load_transport_keys(Project.locate().manifest, dev=args.dev_keys)
        pin = read_secret(ENV_PIN, "PIN", confirm=True)
        puk = os.environ.get(ENV_PUK) or "".join(str(secrets.randbelow(10)) for _ in range(8))  # never shown
        client = w.card()
        keys = "development keys" if issuer.secret.is_development else issuer.secret.source
        print(f"database {args.db}, issuer {issuer.iin} ({keys}), card {args.card}")
        issued = issuer.issue(client, transport_keys, holder=args.holder, limits=limits, pin=pin, puk=puk)
        print(f"1. personalised card {issued.masked} for account {issued.account_id}")
        enrolment = issuer.enrol(client, issued.account_id, evidence=args.evidence, pin=pin)
        print(f"2. enrolled: V-Card {enrolment.v_card.hex()[:16]}… bound to account {issued.account_id}")
        total = issuer.credit(client, issued.account_id, _amount(args.credit))
        print(f"3. credited {total}")
        step = 4
        for value, what in ((amount, "coffee"), (large, "above the step-up threshold, fresh PIN")):
            merchant, answer, receipt = _pay(issuer, client, DEFAULT_MERCHANT, (value, item_info(what[:32])), pin)
            verify_evidence(registry.evidence(receipt.evidence_id))  # type: ignore[arg-type]
            print(f"{step}. paid {value} ({what}): approved, auth code {receipt.auth_code}, evidence "
                  f"{receipt.evidence_id} verified with the stored PKC")
            step += 1
        try:
            merchant.complete(answer)
        except PaymentRefused as refused:
            print(f"{step}. the same payment replayed: refused ({refused.reason.value})")
        with client.flow():  # the payments' flows ended with the card reset: select and verify again
            client.select()
            client.verify_pin(pin)
            print(f"{step + 1}. log, newest first; balance {client.get_balance()}:")
            _print_log(client)
    return 0


# ---------------------------------------------------------------- parser


def register(subparsers: argparse._SubParsersAction, add_card_options: AddOptions, connect: Connect) -> None:
    wallet = subparsers.add_parser("wallet", help="issuer, merchant and cardholder of the wallet applet",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = wallet.add_subparsers(dest="wallet_command", required=True, metavar="WALLET_COMMAND")

    def command(name: str, handler, help_text: str, *, card: bool = True, issuer: bool = False, db: bool = True):
        parser = commands.add_parser(name, help=help_text)
        if card:
            add_card_options(parser)
        if db:
            parser.add_argument("--db", type=Path, default=Path(os.environ.get(ENV_DB) or default_db()),
                                help=f"the issuer's and merchant's SQLite file [env {ENV_DB}]")
        if issuer:
            parser.add_argument("--iin", default=os.environ.get(ENV_IIN, DEFAULT_IIN),
                                help=f"the issuer's IIN, 6 digits [env {ENV_IIN}, default {DEFAULT_IIN}]")
            parser.add_argument("--dev-keys", action="store_true",
                                help="use the public development issuer secret and the simulated cards' transport "
                                "keys (simulator only)")
            parser.add_argument("--issuer-key-file", type=Path, metavar="PATH",
                                help="file holding the issuer master secret (hex), mode 600 "
                                f"[env {ENV_ISSUER_KEY_FILE}; or {ENV_ISSUER_SECRET}]")
        parser.set_defaults(handler=lambda args: handler(args, connect), command_name=name)
        return parser

    def limits(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--max-balance", default=str(DEFAULT_LIMITS.max_balance))
        parser.add_argument("--max-payment", default=str(DEFAULT_LIMITS.max_payment))
        parser.add_argument("--step-up", default=str(DEFAULT_LIMITS.step_up),
                            help="payments above this need a PIN verified right before")

    p = command("personalise", cmd_personalise, "issue a card: new number, personalise, activate", issuer=True)
    p.add_argument("--holder", required=True, help="the cardholder's name")
    p.add_argument("--number", help="issue this card number instead of a new one (ISO/IEC 7812, Luhn)")
    p.add_argument("--account", type=int, help="a replacement card for this existing account")
    limits(p)

    p = command("enrol", cmd_enrol, "bind the card's PKC and V-Card to the account (identity proofed)", issuer=True)
    p.add_argument("--account", type=int, required=True)
    p.add_argument("--evidence", required=True, help="the identity proofing done (document, officer, place)")

    p = command("credit", cmd_credit, "load money onto the account's card", issuer=True)
    p.add_argument("--account", type=int, required=True)
    p.add_argument("amount")
    p.add_argument("--reference", default="", help="up to 8 ASCII characters, kept in the card's log")

    for name, text in (("block", "blacklist an account"), ("unblock", "take an account off the blacklist")):
        p = command(name, cmd_block, text, issuer=True)
        p.add_argument("--account", type=int, required=True)
        p.add_argument("--on-card", action="store_true", help="also set the card itself BLOCKED / ACTIVE")
        if name == "block":
            p.add_argument("--reason", default="blocked by the issuer")

    p = command("pay", cmd_pay, "pay a merchant: request, card signature, issuer authorisation", issuer=True)
    p.add_argument("amount")
    item = p.add_mutually_exclusive_group(required=True)
    item.add_argument("--item", help="item info (text; hashed when longer than 32 bytes)")
    item.add_argument("--item-hex", help="item info as hex bytes")
    p.add_argument("--merchant", default=DEFAULT_MERCHANT, help="merchant ID, up to 8 ASCII characters")

    command("balance", cmd_balance, "the card's balance (PIN)", db=False)
    command("log", cmd_log, "the card's transaction log, newest first (PIN)", db=False)
    command("status", cmd_status, "the card's life cycle state, tries and counter", db=False)
    p = command("pin", cmd_pin, "PIN tries, change or unblock with the PUK", db=False)
    p.add_argument("pin_action", choices=("status", "change", "unblock"))
    command("accounts", cmd_accounts, "accounts and cards in the database (numbers masked)", card=False)
    command("evidence", cmd_evidence, "stored payments, each re-verified with its stored PKC", card=False)

    p = command("demo", cmd_demo, "the whole flow on one card: personalise, enrol, credit, pay, log", issuer=True)
    p.add_argument("--holder", default="Demo Holder")
    p.add_argument("--evidence", default="demo: identity document checked")
    p.add_argument("--credit", default="100000")
    p.add_argument("--amount", default="4500")
    p.add_argument("--large-amount", default="60000")
    limits(p)
