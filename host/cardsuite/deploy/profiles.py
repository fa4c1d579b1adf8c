"""Deployment profiles ([P000]): what goes onto a card, described in TOML files under ``profiles/``.

* A **key profile** (``profiles/keys/*.toml``): parsed by ``cardsuite.gp.keys.load_key_profile``, the same
  parser and policy as ``cardsuite gp --key-profile`` (keys named by "env:NAME" or "file:PATH", never
  written in the file; ``development = true`` for the public test keys).

* An **application profile** (``profiles/apps/*.toml``, or ``[[application]]`` tables of a card profile)::

      name = "wallet"
      package = "wallet"             # a manifest package name, or a path to a CAP file (relative to this file)
      applet = "F0636172641001"      # module AID; default: the package's only applet
      instance = "F0636172641001"    # instance AID; default: the applet AID
      params = "manifest"            # install parameters: "manifest", hex, or "env:NAME"; default none
      privileges = []                # GlobalPlatform privilege names
      [personalise]                  # optional; kind "wallet": cardsuite.wallet.personaliser issues it
      kind = "wallet"
      holder = "Hong Gildong"
      limits = { max_balance = 1000000, max_payment = 300000, step_up = 50000 }
      pin = "env:CARDSUITE_PIN"      # PIN and PUK only from the environment
      puk = "env:CARDSUITE_PUK"
      issuer_secret = "development"  # or "environment" ($CARDSUITE_ISSUER_SECRET / _KEY_FILE)
      iin = "940001"

* A **card profile** (``profiles/cards/*.toml``): card type, key profile, packages and instances::

      type = "simulated"             # simulated | javacard
      keys = "../keys/development.toml"
      level = "mac"                  # secure channel security level (mac, enc)
      packages = ["isofs", "isocmd"] # load files wanted without an instance of their own (libraries)
      applications = ["../apps/isoapplet.toml", "../apps/wallet.toml"]

Everything is checked on load; every error names the file and the entry.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cardsuite.codec import HexError, parse_aid, parse_hex
from cardsuite.errors import CardsuiteError, ConfigurationError
from cardsuite.gp.client import PRIVILEGE_NAMES, encode_privileges
from cardsuite.gp.keys import KeyProfile, load_key_profile
from cardsuite.gp.scp import LEVELS
from cardsuite.keysource import EnvironmentSource
from cardsuite.wallet.personaliser import Limits

CARD_TYPES = ("simulated", "javacard")
ISSUER_SECRET_SOURCES = ("development", "environment")


class ProfileError(ConfigurationError):
    """A profile file that is missing, not TOML, or not what the profile format describes."""


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"profile {path} does not exist") from None
    except UnicodeDecodeError as exc:  # TOML 1.0: a document is UTF-8 text
        raise ProfileError(f"profile {path} is not a TOML text file (not UTF-8 at byte {exc.start})") from None
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {path} is not valid TOML: {exc}") from None


def _check_keys(data: Mapping, allowed: set[str], where: str) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise ProfileError(f"{where}: unknown entries {', '.join(sorted(unknown))} "
                           f"(valid: {', '.join(sorted(allowed))})")


def _string(data: Mapping, key: str, where: str, default: str | None = None) -> str | None:
    value = data.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ProfileError(f"{where}: {key} must be a string, got {value!r}")
    return value


def _aid(text: str | None, what: str) -> bytes | None:
    if text is None:
        return None
    try:
        return parse_aid(text, what)
    except ConfigurationError as exc:
        raise ProfileError(str(exc)) from None


def _env_name(value: str, what: str) -> str:
    if not value.startswith("env:") or len(value) <= 4:
        raise ProfileError(f"{what} must be \"env:NAME\" (secrets come from the environment, never from a file)")
    return value[4:]


def read_env(name: str, what: str, env: Mapping[str, str] | None = None) -> str:
    """A secret named by a profile: present and non-empty, or a clear error (the value is never shown)."""
    return (EnvironmentSource() if env is None else EnvironmentSource(env)).text(name, what)


# ---------------------------------------------------------------- application profile


@dataclass(frozen=True)
class WalletPersonalisation:
    kind: ClassVar[str] = "wallet"  # finds its personaliser (cardsuite.deploy.personalisers)
    holder: str
    limits: Limits
    pin_env: str
    puk_env: str
    issuer_secret: str = "development"
    iin: str = "940001"


@dataclass(frozen=True)
class AppProfile:
    name: str
    source: Path  # the file it came from
    package: str  # manifest package name, or a CAP path (resolved against ``source``)
    applet: bytes | None = None
    instance: bytes | None = None
    params: str | None = None  # "manifest", hex, or "env:NAME": resolved at deploy time
    privileges: tuple[str, ...] = ()
    personalise: WalletPersonalisation | None = None

    @property
    def package_is_path(self) -> bool:
        return self.package.endswith(".cap") or "/" in self.package

    @property
    def privilege_bytes(self) -> bytes:
        return encode_privileges(self.privileges)


def _limits(raw: object, where: str) -> Limits:
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: limits must be a table {{ max_balance, max_payment, step_up }}")
    _check_keys(raw, {"max_balance", "max_payment", "step_up"}, f"{where}, limits")
    values = []
    for name in ("max_balance", "max_payment", "step_up"):
        value = raw.get(name)
        if not isinstance(value, int) or not 0 < value <= 0xFFFFFFFF:
            raise ProfileError(f"{where}: limits.{name} must be an amount 1..{0xFFFFFFFF}, got {value!r}")
        values.append(value)
    return Limits(*values)


def _personalisation(raw: object, where: str) -> WalletPersonalisation:
    where = f"{where}, [personalise]"
    if not isinstance(raw, dict):
        raise ProfileError(f"{where} must be a table")
    _check_keys(raw, {"kind", "holder", "limits", "pin", "puk", "issuer_secret", "iin"}, where)
    if raw.get("kind") != "wallet":
        raise ProfileError(f"{where}: kind must be \"wallet\" (the only personalisation known), "
                           f"got {raw.get('kind')!r}")
    holder = _string(raw, "holder", where)
    if not holder:
        raise ProfileError(f"{where}: holder is required")
    pin = _env_name(_string(raw, "pin", where) or "", f"{where}: pin")
    puk = _env_name(_string(raw, "puk", where) or "", f"{where}: puk")
    secret = _string(raw, "issuer_secret", where, "environment")
    if secret not in ISSUER_SECRET_SOURCES:
        raise ProfileError(f"{where}: issuer_secret must be one of {', '.join(ISSUER_SECRET_SOURCES)}, got {secret!r}")
    iin = _string(raw, "iin", where, "940001") or "940001"
    if not iin.isdigit() or not 6 <= len(iin) <= 8:
        raise ProfileError(f"{where}: iin must be 6 to 8 digits, got {iin!r}")
    return WalletPersonalisation(holder, _limits(raw.get("limits"), where), pin, puk, secret, iin)


def parse_app_profile(data: Mapping, source: Path, where: str) -> AppProfile:
    _check_keys(data, {"name", "package", "applet", "instance", "params", "privileges", "personalise",
                       "description"}, where)
    package = _string(data, "package", where)
    if not package:
        raise ProfileError(f"{where}: package is required (a manifest package name or a CAP file path)")
    name = _string(data, "name", where, package) or package
    params = _string(data, "params", where)
    if params is not None and params != "manifest" and not params.startswith("env:"):
        try:
            parse_hex(params, f"{where}: params", secret=True)
        except HexError as exc:
            raise ProfileError(f"{exc}; params are \"manifest\", hex or \"env:NAME\"") from None
    privileges = data.get("privileges", [])
    if not isinstance(privileges, list) or not all(isinstance(p, str) for p in privileges):
        raise ProfileError(f"{where}: privileges must be a list of names ({', '.join(PRIVILEGE_NAMES)})")
    try:
        encode_privileges(privileges)
    except CardsuiteError as exc:  # CardManagerError: an unknown privilege name
        raise ProfileError(f"{where}: {exc}") from None
    personalise = _personalisation(data["personalise"], where) if "personalise" in data else None
    return AppProfile(name, source, package, _aid(_string(data, "applet", where), f"{where}: applet"),
                      _aid(_string(data, "instance", where), f"{where}: instance"), params, tuple(privileges),
                      personalise)


def load_app_profile(path: Path) -> AppProfile:
    return parse_app_profile(_read(path), path, f"application profile {path}")


# ---------------------------------------------------------------- card profile


@dataclass(frozen=True)
class CardProfile:
    path: Path
    card_type: str
    keys: KeyProfile
    level: str = "mac"
    packages: tuple[str, ...] = ()
    applications: tuple[AppProfile, ...] = ()
    description: str = ""

    @property
    def name(self) -> str:
        return self.path.stem


def load_card_profile(path: Path | str) -> CardProfile:
    path = Path(path)
    data = _read(path)
    where = f"card profile {path}"
    _check_keys(data, {"type", "keys", "level", "packages", "applications", "application", "description"}, where)
    card_type = _string(data, "type", where)
    if card_type not in CARD_TYPES:
        raise ProfileError(f"{where}: type must be one of {', '.join(CARD_TYPES)}, got {card_type!r}")
    key_ref = _string(data, "keys", where)
    if not key_ref:
        raise ProfileError(f"{where}: keys (the key profile's path) is required")
    try:  # the key profile: cardsuite.gp.keys's parser, the one `cardsuite gp --key-profile` uses
        keys = load_key_profile((path.parent / key_ref).resolve())
    except ConfigurationError as exc:  # the key profile's own error, which names its file
        raise ProfileError(str(exc)) from None
    level = _string(data, "level", where, "mac") or "mac"
    if level not in LEVELS:
        raise ProfileError(f"{where}: level must be one of {', '.join(LEVELS)}, got {level!r}")
    packages = data.get("packages", [])
    if not isinstance(packages, list) or not all(isinstance(p, str) and p for p in packages):
        raise ProfileError(f"{where}: packages must be a list of package names or CAP paths")
    refs = data.get("applications", [])
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise ProfileError(f"{where}: applications must be a list of application profile paths")
    apps = [load_app_profile((path.parent / ref).resolve()) for ref in refs]
    inline = data.get("application", [])
    if not isinstance(inline, list):
        raise ProfileError(f"{where}: [[application]] must be an array of tables")
    apps += [parse_app_profile(entry, path, f"{where}, application {i + 1}") for i, entry in enumerate(inline)]
    if not apps and not packages:
        raise ProfileError(f"{where}: nothing to deploy (no packages, no applications)")
    names = [a.name for a in apps]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ProfileError(f"{where}: application names used twice: {', '.join(duplicates)}")
    return CardProfile(path, card_type, keys, level, tuple(packages), tuple(apps),
                       _string(data, "description", where, "") or "")
