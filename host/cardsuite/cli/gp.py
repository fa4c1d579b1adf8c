"""`cardsuite gp …`: the GlobalPlatform card manager from the command line, against any transport.

    cardsuite gp list                                   ISD, applications, load files (packages)
    cardsuite gp load CAP [--install] [--params HEX]    INSTALL [for load] + LOAD, with progress
    cardsuite gp install CAP | --package AID --applet AID  [--instance AID] [--params HEX] [--privs LIST]
    cardsuite gp delete AID [--related]
    cardsuite gp lock AID | unlock AID                  application life cycle (LOCKED <-> SELECTABLE)
    cardsuite gp card-state STATE                       card life cycle (initialized, secured, card_locked, ...)
    cardsuite gp cplc                                   CPLC, card data and keys (no authentication needed)

Keys never come from the command line: `CARDSUITE_GP_KEY` (or `_ENC`/`_MAC`/`_DEK`) and `CARDSUITE_GP_KVN`,
or a key profile (`--key-profile`, env `CARDSUITE_GP_KEY_PROFILE`); `--dev-keys` is the explicit opt-in to the
public test keys 40..4F. After one failed authentication the card is not tried again with the same keys
until `--retry-auth` (the brick guard, `--guard-db`, env `CARDSUITE_GP_GUARD`).

Every INITIALIZE UPDATE counts towards the card manager's lock until EXTERNAL AUTHENTICATE succeeds: wrong
keys, and also a key version the card does not have (6A88), each spend one of the few tries before the card
locks for good (CARD_LOCKED). Do not probe key versions with --kvn: `gp cplc` shows the card's key versions
without authenticating. See docs/gp.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cardsuite import settings
from cardsuite.cli.common import AddOptions, Connect
from cardsuite.codec import parse_aid, parse_hex
from cardsuite.errors import ConfigurationError
from cardsuite.gp.client import (
    CARD_STATES,
    ISD_AID,
    PRIVILEGE_NAMES,
    CardContents,
    GlobalPlatform,
    GPError,
    encode_privileges,
)
from cardsuite.gp.guard import BrickGuard
from cardsuite.gp.keys import parse_kvn, resolve_keys
from cardsuite.gp.scp import LEVELS
from cardsuite.settings import (
    ENV_GP_KEY,
    ENV_GP_KEY_DEK,
    ENV_GP_KEY_ENC,
    ENV_GP_KEY_MAC,
    ENV_GP_KEY_PROFILE,
    ENV_GP_KVN,
    ENV_GUARD,
)
from cardsuite.tooling.cap import read_cap


def default_guard_path() -> Path:
    """In the state directory: the record must survive `rm -rf build` and a change of folder."""
    return settings.guard_db()


def _add_gp_options(parser: argparse.ArgumentParser, add_card_options: AddOptions, auth: bool = True) -> None:
    add_card_options(parser)
    parser.add_argument("--isd", default=ISD_AID.hex().upper(),
                        help=f"the card manager's AID [default {ISD_AID.hex().upper()}]")
    if not auth:
        return
    parser.add_argument("--key-profile", type=Path, default=None,
                        help=f"key profile (TOML): key version, where the keys come from (env:NAME, file:PATH) "
                        f"[env {ENV_GP_KEY_PROFILE}; else the keys from env {ENV_GP_KEY}, or {ENV_GP_KEY_ENC}, "
                        f"{ENV_GP_KEY_MAC} and {ENV_GP_KEY_DEK}]")
    parser.add_argument("--dev-keys", action="store_true",
                        help="use the public GlobalPlatform test keys 40..4F (explicit opt-in; never a fallback)")
    parser.add_argument("--kvn", default=None, help=f"key version number (decimal or 0x..) [env {ENV_GP_KVN}]; "
                        "a version the card lacks still counts as a failed authentication: see `gp cplc`")
    parser.add_argument("--scp", default=None, help="require this secure channel protocol: 02 or 03")
    parser.add_argument("--level", default="mac", help=f"security level: {', '.join(LEVELS)} [default mac]")
    parser.add_argument("--guard-db", type=Path, default=os.environ.get(ENV_GUARD),
                        help=f"brick guard database [env {ENV_GUARD}, default <state>/{settings.GUARD_FILE}]")
    parser.add_argument("--retry-auth", action="store_true",
                        help="authenticate even though these keys already failed on this card (the brick guard); "
                        "each INITIALIZE UPDATE spends a try until EXTERNAL AUTHENTICATE succeeds")


@contextmanager
def session(args: argparse.Namespace, connect: Connect, authenticate: bool = True) -> Iterator[GlobalPlatform]:
    """A connected card with the ISD selected and, when asked, a secure channel open."""
    isd = parse_aid(args.isd, "--isd")
    if authenticate:
        kvn = parse_kvn(args.kvn, "--kvn") if args.kvn is not None else None
        choice = resolve_keys(args.key_profile, args.dev_keys, kvn)
        if args.level not in LEVELS:
            raise ConfigurationError(f"--level {args.level!r}: valid levels are {', '.join(LEVELS)}")
        scp = {None: choice.scp, "02": 2, "2": 2, "03": 3, "3": 3}.get(args.scp, -1)
        if scp == -1:
            raise ConfigurationError(f"--scp {args.scp!r}: valid values are 02 and 03")
        guard = BrickGuard(args.guard_db or default_guard_path())
    with connect(args) as transport, transport.exclusive():  # one flow: nobody else between our commands
        gp = GlobalPlatform(transport, isd, guard if authenticate else None)
        gp.select()
        if authenticate:
            gp.open_secure_channel(choice.keys, LEVELS[args.level], scp=scp, force=args.retry_auth)
        yield gp


def format_registry(registry: CardContents) -> str:
    lines = []
    tab = "     "
    if registry.isd is not None:
        isd = registry.isd
        lines += [f"ISD: {isd.aid.hex().upper()} ({isd.state})", f"{tab}Privs:   {', '.join(isd.privilege_names)}"]
    for app in registry.applications:
        lines.append(f"{app.kind}: {app.aid.hex().upper()} ({app.state})")
        if app.load_file:
            lines.append(f"{tab}From:    {app.load_file.hex().upper()}")
        lines.append(f"{tab}Privs:   {', '.join(app.privilege_names) or '(none)'}")
    for load_file in registry.load_files:
        version = f" v{load_file.version_string}" if load_file.version_string else ""
        lines.append(f"PKG: {load_file.aid.hex().upper()} ({load_file.state}){version}")
        lines += [f"{tab}Applet:  {m.hex().upper()}" for m in load_file.modules]
    return "\n".join(lines)


def _progress(done: int, total: int) -> None:
    end = "\n" if done == total else ""
    print(f"\rLOAD {done}/{total} blocks", end=end, file=sys.stderr, flush=True)


def cmd_list(args: argparse.Namespace, connect: Connect) -> int:
    with session(args, connect) as gp:
        print(format_registry(gp.registry()))
    return 0


def _privileges(args: argparse.Namespace) -> bytes:
    names = [n for n in (args.privs or "").split(",") if n.strip()]
    return encode_privileges(names)


def cmd_load(args: argparse.Namespace, connect: Connect) -> int:
    cap = read_cap(args.cap)
    params = parse_hex(args.params, "--params", secret=True) if args.params else b""
    privileges = _privileges(args)
    with session(args, connect) as gp:
        blocks = gp.load_cap(cap, progress=_progress, block_size=args.block_size,
                             include_descriptor=args.descriptor)
        print(f"loaded {cap.package_aid.hex().upper()} v{cap.package.version} ({blocks} blocks)")
        if args.install:
            for applet in cap.applet_aids:
                gp.install_for_install(cap.package_aid, applet, privileges=privileges, params=params)
                print(f"installed {applet.hex().upper()}")
    return 0


def cmd_install(args: argparse.Namespace, connect: Connect) -> int:
    if args.cap:
        cap = read_cap(args.cap)
        package = cap.package_aid
        applets = [parse_aid(args.applet, "--applet")] if args.applet else cap.applet_aids
        if not applets:
            raise ConfigurationError(f"{args.cap} holds no applet (a library package is loaded, not installed)")
    elif args.package and args.applet:
        package, applets = parse_aid(args.package, "--package"), [parse_aid(args.applet, "--applet")]
    else:
        raise ConfigurationError("give a CAP file, or both --package and --applet")
    instance = parse_aid(args.instance, "--instance") if args.instance else None
    if instance is not None and len(applets) > 1:
        raise ConfigurationError("--instance names one instance; the CAP file has several applets (add --applet)")
    params = parse_hex(args.params, "--params", secret=True) if args.params else b""
    privileges = _privileges(args)
    with session(args, connect) as gp:
        for applet in applets:
            gp.install_for_install(package, applet, instance, privileges=privileges, params=params)
            print(f"installed {(instance or applet).hex().upper()}")
    return 0


def cmd_delete(args: argparse.Namespace, connect: Connect) -> int:
    aid = parse_aid(args.aid, "AID")
    with session(args, connect) as gp:
        gp.delete(aid, related=args.related)
    print(f"deleted {aid.hex().upper()}{' and related objects' if args.related else ''}")
    return 0


def cmd_lock(args: argparse.Namespace, connect: Connect) -> int:
    aid = parse_aid(args.aid, "AID")
    locked = args.gp_command == "lock"
    with session(args, connect) as gp:
        gp.set_application_lock(aid, locked)
    print(f"{'locked' if locked else 'unlocked'} {aid.hex().upper()}")
    return 0


def cmd_card_state(args: argparse.Namespace, connect: Connect) -> int:
    state = args.state.upper()
    if state not in CARD_STATES:
        raise ConfigurationError(f"card state {args.state!r}: valid states are {', '.join(CARD_STATES).lower()}")
    if state == "TERMINATED" and not args.terminate:
        raise ConfigurationError("TERMINATED is irreversible: the card is dead afterwards; add --terminate to confirm")
    with session(args, connect) as gp:
        gp.set_card_life_cycle(state)
    print(f"card life cycle set to {state}")
    return 0


def cmd_cplc(args: argparse.Namespace, connect: Connect) -> int:
    with session(args, connect, authenticate=False) as gp:
        cplc = gp.cplc()
        for name, value in cplc.describe():
            print(f"{name:28} {value}")
        print(f"{'identity':28} {cplc.identity}")
        try:  # most cards give the key information template without authentication
            keys = gp.key_info()
        except GPError as exc:
            print(f"{'key versions':28} not given without authentication ({exc.sw:04X})")
        else:
            versions = sorted({k.version for k in keys})
            print(f"{'key versions':28} {', '.join(f'0x{v:02X}' for v in versions) or 'none listed'} "
                  "(ask for one of these: every INITIALIZE UPDATE counts until EXTERNAL AUTHENTICATE succeeds)")
    return 0


def register(subparsers: argparse._SubParsersAction, add_card_options: AddOptions, connect: Connect) -> None:
    gp = subparsers.add_parser("gp", help="GlobalPlatform card manager: list, load, install, delete, lock",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = gp.add_subparsers(dest="gp_command", required=True, metavar="GP_COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace, Connect], int], help_text: str,
            auth: bool = True) -> argparse.ArgumentParser:
        # no abbreviations: "--key 4041.." must not quietly become "--key-profile 4041.."
        parser = commands.add_parser(name, help=help_text, allow_abbrev=False)
        _add_gp_options(parser, add_card_options, auth)
        parser.set_defaults(handler=lambda args: handler(args, connect))
        return parser

    add("list", cmd_list, "list the ISD, applications and load files")

    def install_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--params", help="the applet's install parameters (hex), sent as C9")
        parser.add_argument("--privs", help=f"privileges, comma-separated: {', '.join(PRIVILEGE_NAMES)}")

    load = add("load", cmd_load, "load a CAP file (INSTALL [for load] and LOAD)")
    load.add_argument("cap", type=Path, help="the CAP file")
    load.add_argument("--install", action="store_true", help="then install every applet of the CAP file")
    load.add_argument("--block-size", type=int, default=None, help="LOAD block size (default: the largest that fits)")
    load.add_argument("--descriptor", action="store_true", help="include the Descriptor component")
    install_options(load)

    install = add("install", cmd_install, "install (and make selectable) an applet of a loaded package")
    install.add_argument("cap", type=Path, nargs="?", help="the CAP file the package came from")
    install.add_argument("--package", help="package (load file) AID, without a CAP file")
    install.add_argument("--applet", help="applet (module) AID")
    install.add_argument("--instance", help="instance AID (default: the applet AID)")
    install_options(install)

    delete = add("delete", cmd_delete, "delete an application or a package")
    delete.add_argument("aid", help="AID to delete")
    delete.add_argument("-r", "--related", action="store_true", help="also delete a package's applications")

    for name, text in (("lock", "lock an application"), ("unlock", "unlock an application")):
        add(name, cmd_lock, text).add_argument("aid", help="application AID")

    state = add("card-state", cmd_card_state, "set the card life cycle state")
    state.add_argument("state", help=f"one of {', '.join(CARD_STATES).lower()}")
    state.add_argument("--terminate", action="store_true", help="confirm TERMINATED (irreversible)")

    add("cplc", cmd_cplc, "show the card's CPLC data (no authentication)", auth=False)
