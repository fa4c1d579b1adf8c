"""`cardsuite gp …`: the GlobalPlatform card manager from the command line, against any transport.

    cardsuite gp list                                   ISD, applications, load files (packages)
    cardsuite gp load CAP [--install] [--params HEX]    INSTALL [for load] + LOAD, with progress
                          [--sd AID] [--dap-key PEM [--dap-sd AID]]   into an SSD, with a DAP block signed
    cardsuite gp install CAP | --package AID --applet AID  [--instance AID] [--params HEX] [--privs LIST] [--default]
    cardsuite gp delete AID [--related]
    cardsuite gp lock AID | unlock AID                  application life cycle (LOCKED <-> SELECTABLE)
    cardsuite gp make-default AID                       INSTALL [for registry update]: the default selected one
    cardsuite gp card-state STATE                       card life cycle (initialized, secured, card_locked, ...)
    cardsuite gp put-key --new-keys PROFILE [--replace [KVN]]   PUT KEY of a key set, key check values shown
    cardsuite gp --isd SD put-key --dap-key PEM [--replace]    the SD's DAP verification key (RSA, version 73)
    cardsuite gp store-data FILE [--format dgi|tlv] [--app AID]  STORE DATA to the ISD or an application
    cardsuite gp script FILE                            several of the above in one authenticated session
    cardsuite gp cplc                                   CPLC, card data and keys (no authentication needed)

Keys never come from the command line: `CARDSUITE_GP_KEY` (or `_ENC`/`_MAC`/`_DEK`) and `CARDSUITE_GP_KVN`,
or a key profile (`--key-profile`, env `CARDSUITE_GP_KEY_PROFILE`; with `kdf` a master key diversified per
card); `--dev-keys` is the explicit opt-in to the public test keys 40..4F. After one failed authentication the
card is not tried again with the same keys until `--retry-auth` (the brick guard, `--guard-db`, env
`CARDSUITE_GP_GUARD`). `--backend gppro` runs the command through GlobalPlatformPro (`CARDSUITE_GP_JAR`).

Every INITIALIZE UPDATE counts towards the card manager's lock until EXTERNAL AUTHENTICATE succeeds: wrong
keys, and also a key version the card does not have (6A88), each spend one of the few tries before the card
locks for good (CARD_LOCKED). Do not probe key versions with --kvn: `gp cplc` shows the card's key versions
without authenticating. See docs/gp.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cardsuite import settings
from cardsuite.cli.common import AddOptions, Connect
from cardsuite.cli.gp_common import (
    SECURITY_LEVELS,
    authentication,
    card_state,
    default_guard_path,
    format_registry,
    install_privileges,
    install_targets,
    read_data_file,
    resolve_path,
)
from cardsuite.cli.gp_gppro import run_with_gppro
from cardsuite.codec import parse_aid, parse_hex
from cardsuite.errors import CardsuiteError, ConfigurationError
from cardsuite.gp.client import (
    CARD_STATES,
    DEFAULT_SELECTED,
    ISD_AID,
    PRIVILEGE_NAMES,
    GlobalPlatform,
    GPError,
    encode_privileges,
)
from cardsuite.gp.dap import DAP_KEY_VERSION, DapSigner, read_public_key
from cardsuite.gp.guard import BrickGuard
from cardsuite.gp.keys import load_key_profile, parse_kvn
from cardsuite.gp.perso import KEY_TYPES, STORE_FORMATS, PersoError, split_objects
from cardsuite.settings import (
    ENV_GP_JAR,
    ENV_GP_KEY,
    ENV_GP_KEY_DEK,
    ENV_GP_KEY_ENC,
    ENV_GP_KEY_MAC,
    ENV_GP_KEY_PROFILE,
    ENV_GP_KVN,
    ENV_GUARD,
)
from cardsuite.tooling.cap import read_cap

# --level takes our names and gp's --mode names (clr, rmac, renc) for the same security levels
BACKENDS = ("cardsuite", "gppro")


def _add_gp_options(parser: argparse.ArgumentParser, add_card_options: AddOptions, auth: bool = True) -> None:
    add_card_options(parser)
    parser.add_argument("--isd", default=ISD_AID.hex().upper(),
                        help=f"the card manager's AID [default {ISD_AID.hex().upper()}]")
    parser.add_argument("--backend", choices=BACKENDS, default="cardsuite",
                        help=f"cardsuite's client, or GlobalPlatformPro's gp.jar [env {ENV_GP_JAR}] with the same "
                        "keys, guard and errors [default cardsuite]")
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
    parser.add_argument("--level", "--mode", dest="level", default="mac",
                        help=f"security level: {', '.join(SECURITY_LEVELS)} [default mac]; rmac and renc need a "
                        "card whose SCP03 i parameter offers them")
    parser.add_argument("--kdf", default=None,
                        help="the key is a master key, diversified per card: emv (EMV CPG 2.1), visa2 or kdf3 "
                        "(gp --key-kdf); a key profile says it with kdf = \"...\"")
    parser.add_argument("--s16", action="store_true", default=None,
                        help="SCP03 S16 mode (16-byte challenges); default: as the card's card data says")
    parser.add_argument("--guard-db", type=Path, default=os.environ.get(ENV_GUARD),
                        help=f"brick guard database [env {ENV_GUARD}, default <state>/{settings.GUARD_FILE}]")
    parser.add_argument("--retry-auth", action="store_true",
                        help="authenticate even though these keys already failed on this card (the brick guard); "
                        "each INITIALIZE UPDATE spends a try until EXTERNAL AUTHENTICATE succeeds")


@contextmanager
def session(args: argparse.Namespace, connect: Connect, authenticate: bool = True) -> Iterator[GlobalPlatform]:
    """A connected card with the ISD selected and, when asked, a secure channel open; the whole session is one
    flow (one PC/SC transaction): nobody else's APDU gets between our commands."""
    isd = parse_aid(args.isd, "--isd")
    if authenticate:
        auth = authentication(args)
        guard = BrickGuard(args.guard_db or default_guard_path())
    with connect(args) as transport, transport.exclusive():
        gp = GlobalPlatform(transport, isd, guard if authenticate else None)
        gp.select()
        if authenticate:
            gp.open_secure_channel(auth.choice.keys, SECURITY_LEVELS[args.level], scp=auth.scp,
                                   force=args.retry_auth, s16=args.s16)
        yield gp


def _progress(done: int, total: int) -> None:
    end = "\n" if done == total else ""
    print(f"\rLOAD {done}/{total} blocks", end=end, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- operations: checked first, then run in a session
# Each prepare_* checks its arguments (files read, AIDs and hex parsed: bad input is refused before the card is
# touched) and returns the step that runs inside an authenticated session (the command's own or a script's) and
# gives its output lines.

Step = Callable[[GlobalPlatform], list[str]]


def prepare_list(args: argparse.Namespace) -> Step:
    return lambda gp: [format_registry(gp.registry())]


def prepare_load(args: argparse.Namespace) -> Step:
    cap = read_cap(resolve_path(args, args.cap))
    params = parse_hex(args.params, "--params", secret=True) if args.params else b""
    privileges = install_privileges(args)
    domain = parse_aid(args.sd, "--sd") if args.sd else None
    if args.dap_sd and not args.dap_key:
        raise ConfigurationError("--dap-sd names the domain a DAP is signed for: give the key with --dap-key")
    dap = DapSigner.from_pem(resolve_path(args, args.dap_key)) if args.dap_key else None
    dap_domain = parse_aid(args.dap_sd, "--dap-sd") if args.dap_sd else None

    def step(gp: GlobalPlatform) -> list[str]:
        shown: list[int] = []

        def progress(done: int, total: int) -> None:
            shown.append(done)
            _progress(done, total)

        try:
            blocks = gp.load_cap(cap, progress=progress, block_size=args.block_size,
                                 include_descriptor=args.descriptor, domain=domain, dap=dap, dap_domain=dap_domain)
        except CardsuiteError:
            if shown:
                print(file=sys.stderr)  # end the progress line: the error goes on a line of its own
            raise
        signed = f", DAP for {(dap_domain or domain or gp.isd or ISD_AID).hex().upper()}" if dap else ""
        out = [f"loaded {cap.package_aid.hex().upper()} v{cap.package.version} ({blocks} blocks{signed})"]
        if args.install:
            for applet in cap.applet_aids:
                gp.install_for_install(cap.package_aid, applet, privileges=privileges, params=params)
                out.append(f"installed {applet.hex().upper()}")
        return out

    return step


def prepare_install(args: argparse.Namespace) -> Step:
    package, applets, instance = install_targets(args)
    params = parse_hex(args.params, "--params", secret=True) if args.params else b""
    privileges = install_privileges(args)

    def step(gp: GlobalPlatform) -> list[str]:
        out = []
        for applet in applets:
            gp.install_for_install(package, applet, instance, privileges=privileges, params=params)
            out.append(f"installed {(instance or applet).hex().upper()}")
        return out

    return step


def prepare_delete(args: argparse.Namespace) -> Step:
    aid = parse_aid(args.aid, "AID")

    def step(gp: GlobalPlatform) -> list[str]:
        gp.delete(aid, related=args.related)
        return [f"deleted {aid.hex().upper()}{' and related objects' if args.related else ''}"]

    return step


def prepare_lock(args: argparse.Namespace) -> Step:
    aid = parse_aid(args.aid, "AID")
    locked = args.gp_command == "lock"

    def step(gp: GlobalPlatform) -> list[str]:
        gp.set_application_lock(aid, locked)
        return [f"{'locked' if locked else 'unlocked'} {aid.hex().upper()}"]

    return step


def prepare_make_default(args: argparse.Namespace) -> Step:
    aid = parse_aid(args.aid, "AID")

    def step(gp: GlobalPlatform) -> list[str]:
        gp.install_for_registry_update(aid, encode_privileges([DEFAULT_SELECTED]))
        return [f"{aid.hex().upper()} is the default selected application"]

    return step


def prepare_card_state(args: argparse.Namespace) -> Step:
    state = card_state(args)

    def step(gp: GlobalPlatform) -> list[str]:
        gp.set_card_life_cycle(state)
        return [f"card life cycle set to {state}"]

    return step


def prepare_put_key(args: argparse.Namespace) -> Step:
    """The new key set from a key profile (never the command line), read and checked before the card; or a DAP
    verification key (a public key, from a PEM file)."""
    if (args.new_keys is None) == (args.dap_key is None):
        raise ConfigurationError("put-key needs --new-keys PROFILE (a key set) or --dap-key PEM (a DAP key), "
                                 "one of them")
    if args.dap_key is not None:
        return _prepare_put_dap_key(args)
    if args.key_type is not None and args.key_type not in KEY_TYPES:
        raise ConfigurationError(f"--type {args.key_type!r}: valid are {', '.join(KEY_TYPES)}")
    choice = load_key_profile(resolve_path(args, args.new_keys)).resolve()
    if not 0x01 <= choice.keys.kvn <= 0x7F:
        raise ConfigurationError(f"{args.new_keys}: a key set put on a card needs a key version 1..127 (kvn)")
    replace = None
    if args.replace is not None:
        replace = choice.keys.kvn if args.replace == "same" else parse_kvn(args.replace, "--replace")

    def step(gp: GlobalPlatform) -> list[str]:
        stored = gp.put_key(choice.keys, args.key_type, replace)
        how = f"in place of 0x{replace:02X}" if replace else "as a new key set"
        kcvs = "  ".join(f"{role} {kcv.hex().upper()}"
                         for role, kcv in zip(("ENC", "MAC", "DEK"), stored.kcvs, strict=False))
        return [f"put key version 0x{stored.kvn:02X} {how} ({choice.source})",
                f"key check values: {kcvs} (the card's, equal to ours)"]

    return step


def _prepare_put_dap_key(args: argparse.Namespace) -> Step:
    if args.key_type is not None:
        raise ConfigurationError("--type is for key sets: a DAP key is an RSA public key")
    if args.replace not in (None, "same"):
        raise ConfigurationError(f"--replace with --dap-key replaces version 0x{DAP_KEY_VERSION:02X}: no KVN")
    public = read_public_key(resolve_path(args, args.dap_key))
    replace = args.replace is not None

    def step(gp: GlobalPlatform) -> list[str]:
        kvn = gp.put_dap_key(public, replace=replace)
        target = (gp.isd or ISD_AID).hex().upper()
        return [f"put the DAP verification key (RSA-{public.key_size}) as version 0x{kvn:02X} of {target}"
                f"{' in place of the one there' if replace else ''}"]

    return step


def prepare_store_data(args: argparse.Namespace) -> Step:
    if args.format not in STORE_FORMATS:
        raise ConfigurationError(f"--format {args.format!r}: valid are {', '.join(STORE_FORMATS)}")
    data = read_data_file(resolve_path(args, args.file))
    try:
        split_objects(data, args.format)
    except PersoError as exc:
        raise ConfigurationError(f"{args.file}: {exc}") from None
    aid = parse_aid(args.app, "--app") if args.app else None

    def step(gp: GlobalPlatform) -> list[str]:
        if aid is not None:
            gp.install_for_personalization(aid)
        blocks = gp.store_data(data, args.format)
        target = aid.hex().upper() if aid is not None else "the security domain"
        return [f"stored {len(data)} bytes ({args.format}) to {target} in {blocks} STORE DATA commands"]

    return step


def prepare_cplc(args: argparse.Namespace) -> Step:
    def step(gp: GlobalPlatform) -> list[str]:
        cplc = gp.cplc()
        out = [f"{name:28} {value}" for name, value in cplc.describe()]
        out.append(f"{'identity':28} {cplc.identity}")
        try:  # most cards give the key information template without authentication
            keys = gp.key_info()
        except GPError as exc:
            out.append(f"{'key versions':28} not given without authentication ({exc.sw:04X})")
        else:
            versions = sorted({k.version for k in keys})
            out.append(f"{'key versions':28} {', '.join(f'0x{v:02X}' for v in versions) or 'none listed'} "
                       "(ask for one of these: every INITIALIZE UPDATE counts until EXTERNAL AUTHENTICATE succeeds)")
        return out

    return step


# ---------------------------------------------------------------- scripts: one session for several operations


class ScriptError(CardsuiteError):
    """A script line that failed: says which, why, and what was done before it."""


@dataclass(frozen=True)
class ScriptLine:
    number: int
    text: str
    args: argparse.Namespace
    step: Step


class _ScriptParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigurationError(message)


def parse_script(path: Path, operations: dict[str, Operation]) -> list[ScriptLine]:
    """Every line checked before the card is touched: one operation per line with its own options (the
    session's options - keys, level, card - are the `gp script` command's), # starts a comment."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the script {path}: {exc}") from None
    parser = _ScriptParser(prog=f"{path.name}", add_help=False, allow_abbrev=False)
    commands = parser.add_subparsers(dest="gp_command", required=True, parser_class=_ScriptParser)
    for name, op in operations.items():
        if op.scriptable:
            op.add_arguments(commands.add_parser(name, add_help=False, allow_abbrev=False))
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            words = shlex.split(line)
            if words[0] not in operations or not operations[words[0]].scriptable:
                valid = ", ".join(n for n, o in operations.items() if o.scriptable)
                raise ConfigurationError(f"{words[0]!r} is not an operation a script runs (valid: {valid})")
            args = parser.parse_args(words)
            args.base_dir = path.parent
            step = operations[words[0]].prepare(args)
        except (CardsuiteError, ValueError) as exc:
            raise ConfigurationError(f"{path} line {number}: {exc}") from None
        lines.append(ScriptLine(number, line, args, step))
    if not lines:
        raise ConfigurationError(f"the script {path} has no operations")
    return lines


def run_script(gp: GlobalPlatform, lines: list[ScriptLine]) -> list[str]:
    """Runs the lines in order in the open session; the first failure stops it, naming what was done."""
    done: list[str] = []
    for line in lines:
        try:
            output = line.step(gp)
        except CardsuiteError as exc:
            before = "; ".join(done) or "nothing"
            raise ScriptError(f"script stopped at line {line.number} ({line.text}): {exc}. Done before it: "
                              f"{before}") from exc
        for text in output:
            print(text)
        done.append(f"line {line.number} {line.args.gp_command}")
    return [f"script: {len(lines)} operations done in one session"]


# ---------------------------------------------------------------- the command group


@dataclass(frozen=True)
class Operation:
    prepare: Callable[[argparse.Namespace], Step]
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    auth: bool = True
    scriptable: bool = True


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def _install_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", help="the applet's install parameters (hex), sent as C9")
    parser.add_argument("--privs", help=f"privileges, comma-separated: {', '.join(PRIVILEGE_NAMES)}")
    parser.add_argument("--default", action="store_true",
                        help=f"make it the default selected application (privilege {DEFAULT_SELECTED})")


def _load_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cap", type=Path, help="the CAP file")
    parser.add_argument("--install", action="store_true", help="then install every applet of the CAP file")
    parser.add_argument("--block-size", type=int, default=None,
                        help="LOAD block size (default: the largest that fits)")
    parser.add_argument("--descriptor", action="store_true", help="include the Descriptor component")
    parser.add_argument("--sd", help="AID of the security domain the package goes to (default: the ISD)")
    parser.add_argument("--dap-key", type=Path, default=None,
                        help="PEM file of the RSA private key (1024 bits) to sign a DAP with, for a domain with DAP "
                        "Verification: the hash in INSTALL [for load], a DAP block before the load file data")
    parser.add_argument("--dap-sd", default=None,
                        help="AID of the domain the DAP is signed for (default: the --sd domain, else the ISD)")
    _install_options(parser)


def _install_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cap", type=Path, nargs="?", help="the CAP file the package came from")
    parser.add_argument("--package", help="package (load file) AID, without a CAP file")
    parser.add_argument("--applet", help="applet (module) AID")
    parser.add_argument("--instance", help="instance AID (default: the applet AID)")
    _install_options(parser)


def _delete_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("aid", help="AID to delete")
    parser.add_argument("-r", "--related", action="store_true", help="also delete a package's applications")


def _aid_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("aid", help="application AID")


def _state_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("state", help=f"one of {', '.join(CARD_STATES).lower()}")
    parser.add_argument("--terminate", action="store_true", help="confirm TERMINATED (irreversible)")


def _put_key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--new-keys", type=Path, default=None,
                        help="key profile of the new key set (its kvn is the new version; keys from env:/file:)")
    parser.add_argument("--dap-key", type=Path, default=None,
                        help=f"PEM file of an RSA key (public, or the public half of a private one): the "
                        f"selected domain's DAP verification key, version 0x{DAP_KEY_VERSION:02X}")
    parser.add_argument("--replace", nargs="?", const="same", default=None, metavar="KVN",
                        help="replace the key set of version KVN (default: the new version) instead of adding one")
    parser.add_argument("--type", dest="key_type", default=None,
                        help=f"key type: {', '.join(KEY_TYPES)} [default: aes on SCP03, 3des on SCP02]")


def _store_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the data: hex text (# comments allowed) or binary")
    parser.add_argument("--format", default="dgi", help=f"{', '.join(STORE_FORMATS)} [default dgi]")
    parser.add_argument("--app", help="the application to personalise (INSTALL [for personalization]); "
                        "default: the security domain itself")


def _script_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="one operation per line (list, load, install, put-key, ...)")


OPERATIONS: dict[str, Operation] = {
    "list": Operation(prepare_list, "list the ISD, applications and load files", _no_arguments),
    "load": Operation(prepare_load, "load a CAP file (INSTALL [for load] and LOAD)", _load_arguments),
    "install": Operation(prepare_install, "install (and make selectable) an applet of a loaded package",
                         _install_arguments),
    "delete": Operation(prepare_delete, "delete an application or a package", _delete_arguments),
    "lock": Operation(prepare_lock, "lock an application", _aid_argument),
    "unlock": Operation(prepare_lock, "unlock an application", _aid_argument),
    "make-default": Operation(prepare_make_default, "make an application the default selected one",
                              _aid_argument),
    "card-state": Operation(prepare_card_state, "set the card life cycle state", _state_arguments),
    "put-key": Operation(prepare_put_key, "put a key set (PUT KEY), showing the key check values",
                         _put_key_arguments),
    "store-data": Operation(prepare_store_data, "STORE DATA to the security domain or an application",
                            _store_data_arguments),
    "cplc": Operation(prepare_cplc, "show the card's CPLC data (no authentication)", _no_arguments, auth=False,
                      scriptable=False),
}


def _handler(name: str, op: Operation, connect: Connect) -> Callable[[argparse.Namespace], int]:
    def handle(args: argparse.Namespace) -> int:
        if args.backend == "gppro":
            return run_with_gppro(name, args, connect)
        if name == "script":
            lines = parse_script(args.file, OPERATIONS)
            with session(args, connect) as gp:
                output = run_script(gp, lines)
        else:
            step = op.prepare(args)  # bad input refused before the card is touched
            with session(args, connect, authenticate=op.auth) as gp:
                output = step(gp)
        for line in output:
            print(line)
        return 0

    return handle


def register(subparsers: argparse._SubParsersAction, add_card_options: AddOptions, connect: Connect) -> None:
    gp = subparsers.add_parser("gp", help="GlobalPlatform card manager: list, load, install, delete, lock, keys",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = gp.add_subparsers(dest="gp_command", required=True, metavar="GP_COMMAND")
    script = Operation(lambda args: lambda gp: [], "run a script of operations in one authenticated session "
                       "(stops at the first failure)", _script_arguments, scriptable=False)  # parse_script prepares
    every = {**OPERATIONS, "script": script}
    for name, op in every.items():
        # no abbreviations: "--key 4041.." must not quietly become "--key-profile 4041.."
        parser = commands.add_parser(name, help=op.help, allow_abbrev=False)
        _add_gp_options(parser, add_card_options, op.auth)
        op.add_arguments(parser)
        parser.set_defaults(handler=_handler(name, op, connect))
