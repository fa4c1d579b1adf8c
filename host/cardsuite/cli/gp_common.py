"""What `cardsuite gp`'s two backends share (cardsuite.cli.gp, cardsuite.cli.gp_gppro): the security level names,
the keys and level checked before the card, the paths of a script line, install targets and privileges, the
registry as printed, personalisation data files."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from cardsuite import settings
from cardsuite.codec import HexError, parse_aid, parse_hex
from cardsuite.errors import ConfigurationError
from cardsuite.gp.client import CARD_STATES, DEFAULT_SELECTED, CardContents, encode_privileges
from cardsuite.gp.keys import DIVERSIFICATIONS, KeyChoice, MasterKeys, parse_kvn, resolve_keys
from cardsuite.gp.scp import LEVELS, MODES
from cardsuite.settings import ENV_GP_KEY
from cardsuite.tooling.cap import read_cap

# --level takes our names and gp's --mode names (clr, rmac, renc) for the same security levels
SECURITY_LEVELS = {**LEVELS, **{name: level for name, level in MODES.items() if name not in LEVELS}}


def default_guard_path() -> Path:
    """In the state directory: the record must survive `rm -rf build` and a change of folder."""
    return settings.guard_db()


@dataclass(frozen=True)
class Authentication:
    """What `gp` authenticates with, checked before any card is touched."""

    choice: KeyChoice
    level: int
    scp: int | None


def authentication(args: argparse.Namespace) -> Authentication:
    kvn = parse_kvn(args.kvn, "--kvn") if args.kvn is not None else None
    choice = resolve_keys(args.key_profile, args.dev_keys, kvn)
    kdf = getattr(args, "kdf", None)
    if kdf is not None:
        choice = _master(choice, kdf)
    if args.level not in SECURITY_LEVELS:
        raise ConfigurationError(f"--level {args.level!r}: valid levels are {', '.join(SECURITY_LEVELS)}")
    scp = {None: choice.scp, "02": 2, "2": 2, "03": 3, "3": 3}.get(args.scp, -1)
    if scp == -1:
        raise ConfigurationError(f"--scp {args.scp!r}: valid values are 02 and 03")
    return Authentication(choice, int(SECURITY_LEVELS[args.level]), scp)


def _master(choice: KeyChoice, kdf: str) -> KeyChoice:
    """--kdf: the one key given is a master key (gp --key-kdf)."""
    if kdf not in DIVERSIFICATIONS:
        raise ConfigurationError(f"--kdf {kdf!r}: valid are {', '.join(DIVERSIFICATIONS)}")
    keys = choice.keys
    if isinstance(keys, MasterKeys):
        if keys.kdf != kdf:
            raise ConfigurationError(f"--kdf {kdf} and the key profile's kdf = {keys.kdf!r} disagree")
        return choice
    if not keys.enc == keys.mac == keys.dek:
        raise ConfigurationError(f"--kdf diversifies one master key: give one key ({ENV_GP_KEY}, or keys.master "
                                 "in a key profile), not ENC, MAC and DEK")
    return KeyChoice(MasterKeys.of(keys.enc, kdf, keys.kvn), f"{choice.source}, diversified ({kdf})", choice.scp)


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


def resolve_path(args: argparse.Namespace, path: Path) -> Path:
    """A path of the command line, or of a script line: relative to the script's folder."""
    base = getattr(args, "base_dir", None)
    return path if base is None or path.is_absolute() else base / path


def install_privileges(args: argparse.Namespace) -> bytes:
    names = [n for n in (args.privs or "").split(",") if n.strip()]
    if getattr(args, "default", False) and DEFAULT_SELECTED not in names:
        names.append(DEFAULT_SELECTED)
    return encode_privileges(names)


def install_targets(args: argparse.Namespace) -> tuple[bytes, list[bytes], bytes | None]:
    """(package, applets, instance) of an install command, checked."""
    if args.cap:
        cap = read_cap(resolve_path(args, args.cap))
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
    return package, applets, instance


def card_state(args: argparse.Namespace) -> str:
    state = args.state.upper()
    if state not in CARD_STATES:
        raise ConfigurationError(f"card state {args.state!r}: valid states are {', '.join(CARD_STATES).lower()}")
    if state == "TERMINATED" and not args.terminate:
        raise ConfigurationError("TERMINATED is irreversible: the card is dead afterwards; add --terminate to confirm")
    return state


def read_data_file(path: Path) -> bytes:
    """Personalisation data from a file: hex text (whitespace and # comments allowed) or, failing that, binary."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return raw
    hex_text = "".join(line.split("#", 1)[0] for line in text.splitlines())
    try:
        return parse_hex("".join(hex_text.split()), str(path), secret=True)
    except HexError:
        return raw
