"""The `cardsuite` command: its parser, the card commands (readers, send, sim) and the entry point."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence

from cardsuite.apdu import CommandAPDU, format_sw
from cardsuite.cli.common import EXIT_ERROR, CliParser, add_card_options, connect, print_error
from cardsuite.errors import CardsuiteError
from cardsuite.project import Project
from cardsuite.settings import ENV_COVERAGE, ENV_ROOT, ENV_SIM_KEYS, ENV_STATE
from cardsuite.sim.bridge import CardManagerConfig, simulator_keys
from cardsuite.sim.vpcd import VpcdSimulator
from cardsuite.transport.pcsc import PcscTransport


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
    manager = CardManagerConfig(args.card_manager, keys=simulator_keys()) if args.card_manager else None
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
    parser = CliParser(prog="cardsuite", description="Host tools for the cardsuite Java Card applets",
                       epilog=f"The checkout (applets/manifest.toml) is found from the working folder, else set "
                       f"{ENV_ROOT}; safety state lives in {ENV_STATE} [default $XDG_STATE_HOME/cardsuite].")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    readers = commands.add_parser("readers", help="list PC/SC readers")
    readers.set_defaults(handler=cmd_readers)

    send = commands.add_parser("send", help="send raw APDUs (hex) and print the responses")
    send.add_argument("apdu", nargs="+", help="command APDU in hex, e.g. 00A4040008F0636172640101")
    send.add_argument("--raw", action="store_true", help="no 61xx/6Cxx handling: show exactly what the card said")
    add_card_options(send)
    send.set_defaults(handler=cmd_send)

    sim = commands.add_parser("sim", help="run simulated cards behind vpcd until interrupted",
                              epilog=f"With ${ENV_COVERAGE} naming a file, every simulator records the applets' "
                              "code coverage (JaCoCo) into it; `invoke coverage` reports it.")
    sim.add_argument("--slots", type=int, choices=(1, 2), default=1, help="how many cards (vpcd slots)")
    sim.add_argument("-t", "--trace", action="store_true", help="the simulators log APDUs to stderr")
    sim.add_argument("--card-manager", choices=("scp02", "scp03"),
                     help="a GlobalPlatform card manager (ISD) with this secure channel; keys from "
                     f"${ENV_SIM_KEYS} (ENC:MAC:DEK or one key, hex), else the public development keys")
    sim.add_argument("--empty", action="store_true", help="no applets installed at start (load them with gp)")
    sim.set_defaults(handler=cmd_sim)

    from cardsuite.cli import fs as fs_cli
    fs_cli.register(commands, add_card_options, connect)
    from cardsuite.cli import wallet as wallet_cli
    wallet_cli.register(commands, add_card_options, connect)
    from cardsuite.cli import ecash as ecash_cli
    ecash_cli.register(commands, add_card_options, connect)
    from cardsuite.cli import gp as gp_cli
    gp_cli.register(commands, add_card_options, connect)
    from cardsuite.cli import deploy as deploy_cli
    deploy_cli.register(commands, add_card_options, connect)
    from cardsuite.cli import scms as scms_cli
    scms_cli.register(commands, add_card_options, connect)

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
