"""`cardsuite scms` (the card management system: init, serve, terminals, cards) and `cardsuite agent` (a
terminal relaying a post-issuance to a card here). docs/scms.md tells the whole flow."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cardsuite.cli.common import AddOptions, Connect, read_secret
from cardsuite.errors import ConfigurationError
from cardsuite.scms.agent import OPEN_TIMEOUT
from cardsuite.settings import ENV_PIN, ENV_SCMS_PASSWORD, ENV_SCMS_TOKEN

CONTROLLING_TERMINAL = "/dev/tty"  # the agent's terminal when stdout goes to a log or a pipe

DEFAULT_LISTEN = "127.0.0.1:8443"


def _system(args: argparse.Namespace):  # noqa: ANN202 - cardsuite.scms.system.System
    from cardsuite.scms.system import load_system

    return load_system(args.dir)


def cmd_init(args: argparse.Namespace) -> int:
    from cardsuite.scms.system import init_system

    password = read_secret(ENV_SCMS_PASSWORD, f"password of the administrator {args.admin}", confirm=True)
    pin = Path(args.pin_file).read_text().strip() if args.pin_file else None
    system = init_system(args.dir, admin=args.admin, password=password, database_url=args.db,
                         module=args.pkcs11_module, pin=pin, master_kdf=args.kdf,
                         development_transport_keys=args.development_transport_keys)
    db = system.database()
    try:
        version = db.schema_version()
    finally:
        db.close()
    print(f"SCMS in {system.folder}: database {system.database_url.split('@')[-1]} (schema version {version}), "
          f"token {system.token!r}, CA {system.ca} (give it to the agents), cards opened with key "
          f"{system.card_keys.label!r}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from cardsuite.project import Project
    from cardsuite.scms.server import serve
    from cardsuite.wallet.store import WalletStore

    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigurationError(f"--listen {args.listen!r}: give HOST:PORT, e.g. {DEFAULT_LISTEN}")
    system = _system(args)
    db = system.database()
    try:  # the schema upgraded before serving: of several processes starting at once one migrates, the others wait
        version = db.create()
    finally:
        db.close()
    # the issuer's wallet.db too (the server holds it open): an unusable one told here in one line, not as the
    # traceback of the server's start
    WalletStore(system.wallet_db).close()
    print(f"SCMS serving https://{args.listen} (TLS 1.3, CA {system.ca}, database schema version {version}); "
          "Ctrl-C stops", flush=True)
    serve(system, Project.locate(), host, int(port))
    return 0


def cmd_terminal_add(args: argparse.Namespace) -> int:
    from cardsuite.scms.system import add_terminal

    token = add_terminal(_system(args), args.name)
    print(f"terminal {args.name}: token (shown once; give it to the terminal as ${ENV_SCMS_TOKEN}):")
    print(token)
    return 0


def cmd_terminal_revoke(args: argparse.Namespace) -> int:
    from cardsuite.scms.system import revoke_terminal

    revoke_terminal(_system(args), args.name)
    print(f"terminal {args.name}: revoked")
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    db = _system(args).database()
    try:
        if args.card_command == "add":
            db.upsert_card(args.cin, "SECURED")
        elif not db.set_blacklisted(args.cin, args.card_command == "blacklist"):
            raise ConfigurationError(f"no card {args.cin} in the CMS")
    finally:
        db.close()
    print(f"card {args.cin}: {args.card_command} done")
    return 0


def cmd_orders(args: argparse.Namespace) -> int:
    from cardsuite.project import Project
    from cardsuite.scms.batch import export_batch, import_orders, link_card, order_states, read_orders

    profiles = Project.locate().root / "profiles" / "cards"
    db = _system(args).database()
    try:
        if args.orders_command == "import":
            count = import_orders(db, read_orders(args.file), args.batch, profiles)
            print(f"batch {args.batch}: {count} orders imported")
        elif args.orders_command == "export":
            text = export_batch(db, args.batch, profiles)
            args.out.write_text(text)
            print(f"batch {args.batch}: {len(text.splitlines()) - 1} orders for the bureau in {args.out}")
        elif args.orders_command == "link":
            link_card(db, args.ref, args.cin)
            print(f"order {args.ref} is card {args.cin}")
        else:
            for ref, state in order_states(db, args.batch).items():
                print(f"{ref}: {state}")
    finally:
        db.close()
    return 0


MAX_OPEN_TIMEOUT = 3600.0  # seconds: past an hour an unreachable server is better told than waited for


def open_timeout(text: str) -> float:
    """--open-timeout: seconds above 0 for TCP, TLS and the WebSocket handshake together, per server."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_OPEN_TIMEOUT:  # NaN and infinity fail this too
        raise ConfigurationError(f"--open-timeout {text!r}: a number of seconds above 0, at most "
                                 f"{MAX_OPEN_TIMEOUT:g}")
    return seconds


def show_puk(puk: str, puk_file: Path | None, terminal: str = CONTROLLING_TERMINAL) -> None:
    """The wallet's PUK, given once to the cardholder: into ``puk_file`` (a new file only its owner may read,
    for a kiosk to print as a PUK letter), else on the terminal, never into a log or a pipe (stdout redirected:
    the controlling terminal). With none of them the PIN step fails before the PIN is changed, and the wallet
    keeps its one-time PIN and PUK until a run that can show it (the SCMS asks again)."""
    if puk_file is not None:
        try:
            descriptor = os.open(puk_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise ConfigurationError(f"--puk-file {puk_file}: {exc.strerror} (a new file is needed)") from None
        with os.fdopen(descriptor, "w") as out:
            out.write(f"{puk}\n")
        print(f"the PUK is in {puk_file}: give it to the cardholder, apart from the card", flush=True)
        return
    if sys.stdout.isatty():
        print(f"PUK (keep it apart from the card): {puk}", flush=True)
        return
    try:
        with open(terminal, "w") as tty:
            tty.write(f"PUK (keep it apart from the card): {puk}\n")
    except OSError:
        # the ADS adds that the wallet keeps its one-time PIN until the request is run again
        raise ConfigurationError("the wallet's PUK can be shown nowhere (no terminal): run again with --puk-file "
                                 "PATH") from None
    print("the PUK is shown on the terminal only", flush=True)


def cmd_agent(args: argparse.Namespace, connect: Connect) -> int:
    from cardsuite.scms.agent import run_request

    timeout = open_timeout(args.open_timeout)  # before the card is opened
    token = Path(args.token_file).read_text().strip() if args.token_file else os.environ.get(ENV_SCMS_TOKEN, "")
    if not token:
        raise ConfigurationError(f"no terminal token: set ${ENV_SCMS_TOKEN} or give --token-file")
    puk_file = Path(args.puk_file) if args.puk_file else None
    if puk_file is not None and (puk_file.exists() or not puk_file.parent.is_dir()):  # before the card is touched
        raise ConfigurationError(f"--puk-file {puk_file}: a new file in an existing folder (a PUK is never written "
                                 "over another)")

    def ask_pin(puk: str) -> str:
        pin = read_secret(ENV_PIN, "cardholder's new PIN (4..8 digits)", confirm=True)
        show_puk(puk, puk_file)  # once the PIN is known: no PUK letter for a PIN step that cannot go on
        return pin

    with connect(args) as transport:
        result = run_request(args.server, args.ca, token, transport, action=args.action, target=args.target,
                             progress=lambda text: print(text, flush=True), ask_pin=ask_pin, open_timeout=timeout)
    print(f"request {result.request} done: card {result.cin}, {result.outcome} ({result.relayed} APDUs relayed)")
    return 0


def register(subparsers: argparse._SubParsersAction, add_card_options: AddOptions, connect: Connect) -> None:
    scms = subparsers.add_parser("scms", help="the card management system: init, serve, terminals, cards")
    commands = scms.add_subparsers(dest="scms_command", required=True, metavar="COMMAND")

    def with_dir(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dir", type=Path, required=True, help="the SCMS folder")

    init = commands.add_parser("init", help="a new SCMS: database, TLS CA, administrator, KMS token and keys")
    with_dir(init)
    init.add_argument("--db", help="postgresql://user@host/db [default sqlite in the folder]")
    init.add_argument("--admin", default="admin", help="the first administrator's name; the password from "
                      f"${ENV_SCMS_PASSWORD}, else a prompt")
    init.add_argument("--pkcs11-module", type=Path, help="a PKCS#11 module [default a SoftHSM2 token in the folder]")
    init.add_argument("--pin-file", help="the token's user PIN, with --pkcs11-module")
    init.add_argument("--kdf", choices=("kdf3", "emv", "visa2"), default="kdf3", help="the issuer master's "
                      "diversification [default kdf3]")
    init.add_argument("--development-transport-keys", action="store_true",
                      help="cards arrive with the public development keys (simulated cards)")
    init.set_defaults(handler=cmd_init)

    serve = commands.add_parser("serve", help="run the HTTPS server (CMS, AMS, KMS, ADS)")
    with_dir(serve)
    serve.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT [default {DEFAULT_LISTEN}]")
    serve.set_defaults(handler=cmd_serve)

    terminal = commands.add_parser("terminal", help="terminals: add (issues a token), revoke")
    terminal_commands = terminal.add_subparsers(dest="terminal_command", required=True, metavar="COMMAND")
    for name, handler in (("add", cmd_terminal_add), ("revoke", cmd_terminal_revoke)):
        sub = terminal_commands.add_parser(name)
        with_dir(sub)
        sub.add_argument("name")
        sub.set_defaults(handler=handler)

    card = commands.add_parser("card", help="cards in the CMS: add, blacklist, unblacklist")
    card.add_argument("card_command", choices=("add", "blacklist", "unblacklist"))
    card.add_argument("cin", help="the card's CPLC identity (cplc:…)")
    with_dir(card)
    card.set_defaults(handler=cmd_card)

    orders = commands.add_parser("orders", help="pre-issuance: card orders in, the bureau's file out, their states")
    orders_commands = orders.add_subparsers(dest="orders_command", required=True, metavar="COMMAND")
    imports = orders_commands.add_parser("import", help="card orders from a CSV (ref,holder,profile) or JSON file")
    imports.add_argument("file", type=Path)
    exports = orders_commands.add_parser("export", help="the personalisation bureau's file for a batch")
    exports.add_argument("--out", type=Path, required=True)
    link = orders_commands.add_parser("link", help="the bureau's answer: an order is this card")
    link.add_argument("ref")
    link.add_argument("cin")
    status = orders_commands.add_parser("status", help="each order of a batch with its state")
    for sub in (imports, exports, status):
        sub.add_argument("--batch", required=True)
    for sub in (imports, exports, link, status):
        with_dir(sub)
        sub.set_defaults(handler=cmd_orders)

    agent = subparsers.add_parser("agent", help="a terminal: relay a post-issuance from the SCMS to a card here")
    agent.add_argument("--server", action="append", required=True, metavar="URL",
                       help="https://host:port of an SCMS; repeat it for the system's other serve processes, "
                       "each tried in turn when the link to the one before breaks")
    agent.add_argument("--ca", type=Path, required=True, help="the SCMS's CA certificate (pinned)")
    agent.add_argument("--token-file", help=f"the terminal token [default ${ENV_SCMS_TOKEN}]")
    agent.add_argument("--puk-file", metavar="PATH", help="write a personalised wallet's PUK into this new file "
                       "(mode 600) [default: shown on the terminal]")
    agent.add_argument("--open-timeout", metavar="SECONDS", default=str(OPEN_TIMEOUT),
                       help="how long TCP, TLS and the WebSocket handshake may take together, per server, before "
                       f"the next --server is tried [default {OPEN_TIMEOUT:g}]")
    agent.add_argument("action", choices=("install", "remove", "lock", "unlock", "rotate"),
                       help="rotate: the issuer's keys in place of the card's transport keys")
    agent.add_argument("target", nargs="*", default=[], help="applications of the catalogue, e.g. isoapplet "
                       "(install: several in one request)")
    add_card_options(agent)
    agent.set_defaults(handler=lambda args: cmd_agent(args, connect))
