"""The `cardsuite` command line. Only this layer prints; every error, from argparse, a command or a bug,
is one line `Error: …` on stderr unless --debug asks for the traceback."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TextIO

from cardsuite.errors import ConfigurationError
from cardsuite.keysource import EnvironmentSource, MissingSecret
from cardsuite.settings import ENV_APDU_TIMEOUT, ENV_CARD, ENV_TRACE
from cardsuite.sim.targets import open_transport
from cardsuite.trace import Trace, TraceEntry
from cardsuite.transport.base import Transport, apdu_timeout
from cardsuite.transport.pcsc import PcscTransport
from cardsuite.transport.transcript import TranscriptRecorder

Handler = Callable[[argparse.Namespace], int]
AddOptions = Callable[[argparse.ArgumentParser], None]  # what a command group gets to add the card options
Connect = Callable[[argparse.Namespace], Transport]  # ... and to open the card those options name


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
    if text == "sim" or any(text.startswith(kind) and len(text) > len(kind) for kind in ("reader:", "replay:")):
        return text
    slot = text[len("vpcd:"):] if text.startswith("vpcd:") else None
    if text == "vpcd" or (slot and slot.isascii() and slot.isdigit()):
        return text
    raise argparse.ArgumentTypeError(
        f"unknown card {text!r}: use sim, vpcd[:slot number], reader:<name or index> or replay:<transcript>")


def stream_sink(stream: TextIO | None = None) -> Callable[[TraceEntry], None]:
    """A trace sink printing each entry to ``stream`` (looked up at each entry when None: tests swap
    sys.stderr). The CLI's: the library below it never prints."""

    def sink(entry: TraceEntry) -> None:
        print(entry.format(), file=stream if stream is not None else sys.stderr)

    return sink


def connect(args: argparse.Namespace) -> Transport:
    """The transport the options name, connected, with tracing to stderr when asked."""
    transport = open_transport(args.card)
    if isinstance(transport, PcscTransport) and getattr(args, "apdu_timeout", None) is not None:
        transport.timeout = apdu_timeout(args.apdu_timeout)
    transport.connect()
    sinks = [stream_sink()] if args.trace else []
    record = getattr(args, "record", None)
    if record:
        transport.trace = TranscriptRecorder(Path(record), card=args.card, sinks=sinks)
    elif args.trace:
        transport.trace = Trace(sinks=sinks)
    return transport


def read_secret(env: str, what: str, confirm: bool = False) -> str:
    """A PIN or PUK from the environment (``cardsuite.keysource``), else from a prompt on the terminal; never
    from argv. Set but empty is an error, not a prompt: an empty variable is a mistake in a script."""
    source = EnvironmentSource()
    if env in source.env:
        if not source.env[env]:
            raise ConfigurationError(f"an empty {what} (${env} is set but empty)")
        return source.text(env, what)
    if not sys.stdin.isatty():
        raise MissingSecret(f"the {what} is needed: set {env} (no terminal to ask on)")
    value = getpass.getpass(f"{what}: ")
    if confirm and getpass.getpass(f"{what} again: ") != value:
        raise ConfigurationError(f"the two {what} entries differ")
    if not value:
        raise ConfigurationError(f"an empty {what}")
    return value


def add_card_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c", "--card", type=card_spec, default=os.environ.get(ENV_CARD, "sim"),
        help="sim (in-process simulator), vpcd[:slot] (simulator behind pcscd), reader:<name or index>, "
        f"replay:FILE (a simulated card after the recorded session FILE) [env {ENV_CARD}, default sim]",
    )
    parser.add_argument(
        "-t", "--trace", action="store_true", default=os.environ.get(ENV_TRACE, "") not in ("", "0"),
        help=f"print every APDU exchange to stderr, secrets masked [env {ENV_TRACE}]",
    )
    parser.add_argument(
        "--record", metavar="FILE", default=None,
        help="write every APDU exchange and reset to FILE, secrets masked: a transcript that "
        "--card replay:FILE plays again on a simulated card",
    )
    parser.add_argument(
        "--apdu-timeout", metavar="SECONDS", default=None,
        help="how long a PC/SC card may take to answer one APDU (LOAD, INSTALL, DELETE 4x) "
        f"[env {ENV_APDU_TIMEOUT}, default 30]",
    )
