"""The `cardsuite` command line. Only this layer prints; every error, from argparse, a command or a bug,
is one line `Error: …` on stderr unless --debug asks for the traceback."""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import NoReturn

from .apdu import CommandAPDU, format_sw
from .errors import CardsuiteError, ConfigurationError
from .project import Project
from .simulator import CardManagerConfig, VpcdSimulator, open_transport
from .trace import Trace, stream_sink
from .transport import PcscTransport, Transport, apdu_timeout

Handler = Callable[[argparse.Namespace], int]

EXIT_ERROR = 1
EXIT_USAGE = 2  # argparse's convention for a bad command line


def print_error(message: str) -> None:
    """The CLI's one error line. A multi-line message (psycopg's hints, a TOML decoder's) is joined."""
    text = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    print(f"Error: {text}", file=sys.stderr)


class CliParser(argparse.ArgumentParser):
    """argparse with the one-line error (argparse prints usage and a second line); subcommand parsers made
    through ``add_subparsers`` inherit the class."""

    def error(self, message: str) -> NoReturn:
        print_error(f"{self.prog}: {message} (see {self.prog} --help)")
        sys.exit(EXIT_USAGE)


def card_spec(text: str) -> str:
    """--card checked when the command line is read, before anything runs (open_transport opens it)."""
    if text == "sim" or (text.startswith("reader:") and len(text) > len("reader:")):
        return text
    slot = text[len("vpcd:"):] if text.startswith("vpcd:") else None
    if text == "vpcd" or (slot and slot.isascii() and slot.isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"unknown card {text!r}: use sim, vpcd[:slot number] or reader:<name or index>")


def connect(args: argparse.Namespace) -> Transport:
    """The transport the options name, connected, with tracing to stderr when asked."""
    transport = open_transport(args.card)
    if isinstance(transport, PcscTransport) and getattr(args, "apdu_timeout", None) is not None:
        transport.timeout = apdu_timeout(args.apdu_timeout)
    transport.connect()
    if args.trace:
        transport.trace = Trace(sinks=[stream_sink()])
    return transport


ENV_PIN = "CARDSUITE_PIN"


def read_secret(env: str, what: str, confirm: bool = False) -> str:
    """A PIN or PUK from the environment, else from a prompt on the terminal; never from argv."""
    value = os.environ.get(env)
    if value is None:
        if not sys.stdin.isatty():
            raise ConfigurationError(f"the {what} is needed: set {env} (no terminal to ask on)")
        value = getpass.getpass(f"{what}: ")
        if confirm and getpass.getpass(f"{what} again: ") != value:
            raise ConfigurationError(f"the two {what} entries differ")
    if not value:
        raise ConfigurationError(f"an empty {what}")
    return value


def add_card_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--card", type=card_spec, default=os.environ.get("CARDSUITE_CARD", "sim"),
        help="sim (in-process simulator), vpcd[:slot] (simulator behind pcscd), reader:<name or index> "
        "[env CARDSUITE_CARD, default sim]",
    )
    parser.add_argument(
        "-t", "--trace", action="store_true", default=os.environ.get("CARDSUITE_TRACE", "") not in ("", "0"),
        help="print every APDU exchange to stderr, secrets masked [env CARDSUITE_TRACE]",
    )
    parser.add_argument(
        "--apdu-timeout", metavar="SECONDS", default=None,
        help="how long a PC/SC card may take to answer one APDU (LOAD, INSTALL, DELETE 4x) "
        "[env CARDSUITE_APDU_TIMEOUT, default 30]",
    )


def cmd_readers(args: argparse.Namespace) -> int:
    names = PcscTransport.reader_names()
    if not names:
        print("no PC/SC readers (is pcscd running? `invoke sim` starts it with simulated cards)")
        return 1
    for index, name in enumerate(names):
        print(f"{index}: {name}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    commands = [CommandAPDU.from_hex(text) for text in args.apdu]
    with connect(args) as transport:
        status = 0
        for command in commands:
            response = transport.transmit(command) if not args.raw else transport.exchange(command)
            print(f"{response.data.hex().upper()} {format_sw(response.sw)}".strip())
            if response.sw != 0x9000:
                status = 2
        return status


def cmd_sim(args: argparse.Namespace) -> int:
    project = Project.locate()
    manager = CardManagerConfig(args.card_manager) if args.card_manager else None
    applets = [] if args.empty else None
    simulators = [VpcdSimulator(project, slot=slot, trace=args.trace, card_manager=manager, applets=applets)
                  for slot in range(args.slots)]
    try:
        for simulator in simulators:
            simulator.start()
            print(f"simulated card ready in reader {simulator.reader!r} (ATR {simulator.atr.hex().upper()})")
        print("Ctrl-C stops the simulated cards", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while all(s.process is not None and s.process.poll() is None for s in simulators):
            time.sleep(0.5)
        print("a simulator exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for simulator in simulators:
            simulator.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="cardsuite", description="Host tools for the cardsuite Java Card applets")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    readers = commands.add_parser("readers", help="list PC/SC readers")
    readers.set_defaults(handler=cmd_readers)

    send = commands.add_parser("send", help="send raw APDUs (hex) and print the responses")
    send.add_argument("apdu", nargs="+", help="command APDU in hex, e.g. 00A4040008F0636172640101")
    send.add_argument("--raw", action="store_true", help="no 61xx/6Cxx handling: show exactly what the card said")
    add_card_options(send)
    send.set_defaults(handler=cmd_send)

    sim = commands.add_parser("sim", help="run simulated cards behind vpcd until interrupted")
    sim.add_argument("--slots", type=int, choices=(1, 2), default=1, help="how many cards (vpcd slots)")
    sim.add_argument("-t", "--trace", action="store_true", help="the simulators log APDUs to stderr")
    sim.add_argument("--card-manager", choices=("scp02", "scp03"),
                     help="a GlobalPlatform card manager (ISD) with this secure channel; keys from "
                     "CARDSUITE_SIM_KEYS (ENC:MAC:DEK hex), else the public development keys")
    sim.add_argument("--empty", action="store_true", help="no applets installed at start (load them with gp)")
    sim.set_defaults(handler=cmd_sim)

    from . import fs_cli
    fs_cli.register(commands, add_card_options, connect)
    from . import wallet_cli
    wallet_cli.register(commands, add_card_options, connect)
    from . import ecash_cli
    ecash_cli.register(commands, add_card_options, connect)
    from . import gp_cli
    gp_cli.register(commands, add_card_options, connect)
    from . import deploy_cli
    deploy_cli.register(commands, add_card_options, connect)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130  # 128 + SIGINT, as a shell reports it
    except (CardsuiteError, ValueError, argparse.ArgumentTypeError, OSError) as exc:
        # what the user got wrong (input, files, the card): the message says it
        if args.debug:
            raise
        print_error(str(exc) or type(exc).__name__)
        return EXIT_ERROR
    except Exception as exc:  # a bug, still one line: --debug shows where
        if args.debug:
            raise
        print_error(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
