"""`cardsuite fs …`: the ISO 7816-4 file system from the command line, against any transport.

    cardsuite fs tree [PATH]                    the tree below PATH (default 3F00)
    cardsuite fs cat FILE [--offset N] [--length N] [--raw]
    cardsuite fs put FILE DATA [--offset N] [--text] [--write]
    cardsuite fs records FILE                   every record, numbered
    cardsuite fs append FILE DATA [--text]
    cardsuite fs search FILE PATTERN [--text] [--backward]

FILE is a path ('3F00/5000/5001', absolute from 3F00, else from the application's current DF) or a
DF path and a short EF identifier ('3F00/5000/sfi:3'). DATA is hex unless --text. --aid selects the
application first (default: the ISO applet); --pin verifies the PIN taken from CARDSUITE_PIN or asked
at a prompt, never from the command line (the trace masks it).
"""

from __future__ import annotations

import argparse
import os
import sys

from cardsuite.apdu import StatusError
from cardsuite.cli.common import AddOptions, Connect, read_secret
from cardsuite.codec import HexError, parse_aid, parse_hex
from cardsuite.errors import ConfigurationError
from cardsuite.fs.client import FID_MF, FileRef, IsoFileSystem, TreeNode, parse_path
from cardsuite.settings import ENV_AID, ENV_PIN

ISO_APPLET_AID = bytes.fromhex("0011223344552001")
SW_COMMAND_INCOMPATIBLE = 0x6981



def _aid(text: str) -> bytes:
    """An application identifier (ISO 7816-4 8.2.1.2, ISO 7816-5), or empty for none."""
    try:
        return parse_aid(text, "AID") if text.strip() else b""
    except HexError as exc:  # argparse shows an ArgumentTypeError's message, a ValueError's only as "invalid"
        raise argparse.ArgumentTypeError(str(exc)) from None


def _file_ref(text: str) -> FileRef:
    try:
        return FileRef.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _path(text: str) -> list[int]:
    try:
        return parse_path(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _number(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _payload(args: argparse.Namespace, text: str) -> bytes:
    if args.text:
        return text.encode()
    try:  # checked here, not by argparse: --text decides
        return parse_hex(text, f"{args.fs_command} data")
    except HexError as exc:
        raise ConfigurationError(f"{exc} (--text sends it as text)") from None


def read_pin() -> bytes:
    """The PIN from CARDSUITE_PIN, else from a prompt on the terminal."""
    return read_secret(ENV_PIN, "PIN").encode()


class _Session:
    """A connected card with the application selected and the PIN verified when asked."""

    def __init__(self, args: argparse.Namespace, connect: Connect) -> None:
        self.args = args
        self.connect = connect

    def __enter__(self) -> IsoFileSystem:
        pin = read_pin() if self.args.pin else None  # ask before touching the card
        self.transport = self.connect(self.args)
        fs = IsoFileSystem(self.transport)
        if self.args.aid:
            fs.select_application(self.args.aid)
        if pin is not None:
            fs.verify(pin)
        return fs

    def __exit__(self, *exc: object) -> None:
        self.transport.disconnect()


def _print_tree(node: TreeNode, depth: int = 0) -> None:
    indent = "  " * depth
    if node.error is not None:
        print(f"{indent}{node.path[-1]:04X}: {node.error.meaning} ({node.error.sw:04X})")
    elif node.fcp is not None:
        print(f"{indent}{node.fcp.summary()}")
    for child in node.children:
        _print_tree(child, depth + 1)


def cmd_tree(args: argparse.Namespace, connect: Connect) -> int:
    with _Session(args, connect) as fs:
        _print_tree(fs.tree(args.path))
    return 0


def cmd_cat(args: argparse.Namespace, connect: Connect) -> int:
    ref: FileRef = args.file
    with _Session(args, connect) as fs:
        records = None
        if ref.sfi is None:
            fcp = fs.select_path(ref.path, from_mf=ref.path[0] == FID_MF)
            if fcp is not None and fcp.structure.is_record:
                records = fs.read_all_records()
            else:
                data = fs.read_binary(args.offset, args.length)
        else:
            fs.select_ref(ref)
            try:
                data = fs.read_binary(args.offset, args.length, sfi=ref.sfi)
            except StatusError as exc:
                if exc.sw != SW_COMMAND_INCOMPATIBLE:
                    raise
                records = fs.read_all_records(sfi=ref.sfi)  # the SFI names a record EF
    if records is not None:
        _print_records(records)
    elif args.raw:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        print(data.hex().upper())
    return 0


def _print_records(records: list[bytes]) -> None:
    for number, record in enumerate(records, 1):
        print(f"{number:3d}: {record.hex().upper()}")
    if not records:
        print("no records")


def cmd_put(args: argparse.Namespace, connect: Connect) -> int:
    data = _payload(args, args.data)
    with _Session(args, connect) as fs:
        sfi = fs.select_ref(args.file)
        (fs.write_binary if args.write else fs.update_binary)(args.offset, data, sfi=sfi)
    print(f"{'wrote' if args.write else 'updated'} {len(data)} bytes at offset {args.offset}")
    return 0


def cmd_records(args: argparse.Namespace, connect: Connect) -> int:
    with _Session(args, connect) as fs:
        sfi = fs.select_ref(args.file)
        records = fs.read_all_records(sfi=sfi)
    _print_records(records)
    return 0


def cmd_append(args: argparse.Namespace, connect: Connect) -> int:
    data = _payload(args, args.data)
    with _Session(args, connect) as fs:
        sfi = fs.select_ref(args.file)
        fs.append_record(data, sfi=sfi)
    print(f"appended a record of {len(data)} bytes")
    return 0


def cmd_search(args: argparse.Namespace, connect: Connect) -> int:
    pattern = _payload(args, args.pattern)
    with _Session(args, connect) as fs:
        sfi = fs.select_ref(args.file)
        found = fs.search_record(pattern, start=0, sfi=sfi, backward=args.backward)
    if not found:
        print("no record matches")
        return 1
    print(" ".join(str(n) for n in found))
    return 0


def register(subparsers: argparse._SubParsersAction, add_card_options: AddOptions, connect: Connect) -> None:
    """Adds `fs` and its commands to the cardsuite command line."""
    fs = subparsers.add_parser("fs", help="ISO 7816-4 files: tree, cat, put, records, append, search",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = fs.add_subparsers(dest="fs_command", required=True, metavar="FS_COMMAND")

    def command(name: str, help_text: str, handler) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        add_card_options(parser)
        parser.add_argument("--aid", type=_aid, default=os.environ.get(ENV_AID, ISO_APPLET_AID.hex()),
                            help="application to select first, hex; empty for none "
                            f"[env {ENV_AID}, default {ISO_APPLET_AID.hex().upper()}]")
        parser.add_argument("--pin", action="store_true",
                            help=f"verify the PIN first, taken from {ENV_PIN} or asked at a prompt")
        parser.set_defaults(handler=lambda args: handler(args, connect))
        return parser

    file_help = "3F00/5000/5001 (absolute), 5000/5001 (from the current DF) or 3F00/5000/sfi:1"

    tree = command("tree", "show the file tree (children from each DF's FCP)", cmd_tree)
    tree.add_argument("path", nargs="?", type=_path, default=[0x3F00], help="DF to start from (default 3F00)")

    cat = command("cat", "read a transparent EF (or list a record EF)", cmd_cat)
    cat.add_argument("file", type=_file_ref, help=file_help)
    cat.add_argument("--offset", type=_number, default=0, help="first byte (default 0)")
    cat.add_argument("--length", type=_number, default=None, help="bytes to read (default: to the end)")
    cat.add_argument("--raw", action="store_true", help="write the bytes as they are, not hex")

    put = command("put", "UPDATE BINARY (or WRITE BINARY with --write) into a transparent EF", cmd_put)
    put.add_argument("file", type=_file_ref, help=file_help)
    put.add_argument("data", help="hex bytes (or text with --text)")
    put.add_argument("--offset", type=_number, default=0, help="first byte (default 0)")
    put.add_argument("--text", action="store_true", help="DATA is text, sent as UTF-8")
    put.add_argument("--write", action="store_true", help="WRITE BINARY: OR into the stored bytes")

    records = command("records", "read every record of a record EF", cmd_records)
    records.add_argument("file", type=_file_ref, help=file_help)

    append = command("append", "APPEND RECORD to a record EF", cmd_append)
    append.add_argument("file", type=_file_ref, help=file_help)
    append.add_argument("data", help="hex bytes (or text with --text)")
    append.add_argument("--text", action="store_true", help="DATA is text, sent as UTF-8")

    search = command("search", "SEARCH RECORD: numbers of the records containing a pattern", cmd_search)
    search.add_argument("file", type=_file_ref, help=file_help)
    search.add_argument("pattern", help="hex bytes (or text with --text)")
    search.add_argument("--text", action="store_true", help="PATTERN is text, sent as UTF-8")
    search.add_argument("--backward", action="store_true", help="from the last record down")
