"""Where GlobalPlatform keys come from: the environment or a key profile file, never the command line.

Environment: ``CARDSUITE_GP_KEY`` (one key for ENC, MAC and DEK) or ``CARDSUITE_GP_KEY_ENC``,
``_MAC`` and ``_DEK`` together; ``CARDSUITE_GP_KVN`` the key version number (decimal or 0x..).

Key profile ([P000]: key version, key references, where the keys come from), TOML::

    kvn = 0x30                 # key version number; 0 lets the card pick its default set
    scp = 3                    # optional: the protocol the card must offer (2 or 3)
    [keys]
    key = "env:SHOP_GP_KEY"    # or enc/mac/dek separately; "env:NAME" reads a variable, else hex

The public development keys (40..4F) are used only when asked for explicitly (``--dev-keys``): a
quiet fallback to them is how cards get locked.
"""

from __future__ import annotations

import logging
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cardsuite.codec import parse_hex
from cardsuite.errors import ConfigurationError
from cardsuite.gp.scp import KEY_LENGTHS, KeySet

log = logging.getLogger(__name__)

ENV_KEY = "CARDSUITE_GP_KEY"
ENV_KVN = "CARDSUITE_GP_KVN"
ENV_PROFILE = "CARDSUITE_GP_KEY_PROFILE"
DEVELOPMENT_KEY = bytes(range(0x40, 0x50))  # GP's well-known test key 40 41 .. 4F


@dataclass(frozen=True)
class KeyChoice:
    """Keys and where they came from (for messages; never the values)."""

    keys: KeySet
    source: str
    scp: int | None = None


def _hex_key(text: str, where: str) -> bytes:
    return parse_hex(text, where, length=KEY_LENGTHS, secret=True)


def parse_kvn(text: str | int, where: str) -> int:
    try:
        value = text if isinstance(text, int) else int(str(text), 0)
    except ValueError:
        raise ConfigurationError(f"{where} must be a number (decimal or 0x..), got {text!r}") from None
    if not 0 <= value <= 0x7F:
        raise ConfigurationError(f"{where} must be 0..127 (0x00..0x7F), got {value}")
    return value


def keys_from_environment(env: Mapping[str, str] | None = None, kvn: int | None = None) -> KeyChoice | None:
    env = os.environ if env is None else env
    parts = {name: env.get(f"{ENV_KEY}_{name.upper()}") for name in ("enc", "mac", "dek")}
    single = env.get(ENV_KEY)
    given = [name for name, value in parts.items() if value]
    if single and given:
        raise ConfigurationError(f"set either {ENV_KEY} or {ENV_KEY}_ENC/_MAC/_DEK, not both")
    if given and len(given) != 3:
        missing = ", ".join(f"{ENV_KEY}_{n.upper()}" for n in parts if n not in given)
        raise ConfigurationError(f"{ENV_KEY}_ENC, _MAC and _DEK go together; missing {missing}")
    if not single and not given:
        return None
    version = kvn if kvn is not None else parse_kvn(env.get(ENV_KVN, "0"), ENV_KVN)
    if single:
        return KeyChoice(KeySet.single(_hex_key(single, ENV_KEY), version), f"${ENV_KEY}")
    keys = {n: _hex_key(v or "", f"{ENV_KEY}_{n.upper()}") for n, v in parts.items()}
    return KeyChoice(KeySet(keys["enc"], keys["mac"], keys["dek"], version), f"${ENV_KEY}_ENC/_MAC/_DEK")


def _profile_value(value: object, where: str, env: Mapping[str, str]) -> bytes:
    if not isinstance(value, str):
        raise ConfigurationError(f"{where} must be a hex string or \"env:NAME\"")
    if value.startswith("env:"):
        name = value[4:]
        if name not in env:
            raise ConfigurationError(f"{where} names the environment variable {name}, which is not set")
        return _hex_key(env[name], f"${name} ({where})")
    return _hex_key(value, where)


def keys_from_profile(path: Path, env: Mapping[str, str] | None = None) -> KeyChoice:
    env = os.environ if env is None else env
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read the key profile {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:  # TOML 1.0: a document is UTF-8 text
        raise ConfigurationError(f"the key profile {path} is not a TOML text file (not UTF-8 at byte "
                                 f"{exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"the key profile {path} is not valid TOML: {exc}") from None
    keys = data.get("keys")
    if not isinstance(keys, dict):
        raise ConfigurationError(f"the key profile {path} has no [keys] table")
    unknown = set(keys) - {"key", "enc", "mac", "dek"}
    if unknown:
        raise ConfigurationError(f"the key profile {path}: unknown entries {', '.join(sorted(unknown))} in [keys] "
                                 "(valid: key, enc, mac, dek)")
    literal = any(isinstance(v, str) and not v.startswith("env:") for v in keys.values())
    if literal and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("key profile %s holds keys and is readable by others; chmod 600 it", path)
    kvn = parse_kvn(data.get("kvn", 0), f"kvn in {path}")
    scp = data.get("scp")
    if scp not in (None, 2, 3):
        raise ConfigurationError(f"scp in {path} must be 2 or 3, got {scp!r}")
    if "key" in keys:
        if len(keys) > 1:
            raise ConfigurationError(f"the key profile {path}: give key, or enc/mac/dek, not both")
        single = _profile_value(keys["key"], f"keys.key in {path}", env)
        return KeyChoice(KeySet.single(single, kvn), f"key profile {path}", scp)
    missing = [n for n in ("enc", "mac", "dek") if n not in keys]
    if missing:
        raise ConfigurationError(f"the key profile {path} lacks {', '.join(missing)} in [keys]")
    values = {n: _profile_value(keys[n], f"keys.{n} in {path}", env) for n in ("enc", "mac", "dek")}
    return KeyChoice(KeySet(values["enc"], values["mac"], values["dek"], kvn), f"key profile {path}", scp)


def development_keys(kvn: int = 0) -> KeyChoice:
    return KeyChoice(KeySet.single(DEVELOPMENT_KEY, kvn), "the public development keys 40..4F (--dev-keys)")


def resolve_keys(profile: Path | None = None, dev_keys: bool = False, kvn: int | None = None,
                 env: Mapping[str, str] | None = None) -> KeyChoice:
    """The keys to use: a key profile, else the environment, else the development keys when (and only when)
    asked for. Two sources at once is an error rather than a silent preference."""
    env = os.environ if env is None else env
    if profile is None and env.get(ENV_PROFILE):
        profile = Path(env[ENV_PROFILE])
    from_env = keys_from_environment(env, kvn)
    sources = [name for name, present in (("a key profile", profile is not None),
                                          (f"${ENV_KEY}*", from_env is not None),
                                          ("--dev-keys", dev_keys)) if present]
    if len(sources) > 1:
        raise ConfigurationError(f"keys given twice ({' and '.join(sources)}); give one source")
    if profile is not None:
        choice = keys_from_profile(profile, env)
        if kvn is not None:
            keys = KeySet(choice.keys.enc, choice.keys.mac, choice.keys.dek, kvn)
            choice = KeyChoice(keys, choice.source, choice.scp)
        return choice
    if from_env is not None:
        return from_env
    if dev_keys:
        return development_keys(kvn if kvn is not None else parse_kvn(env.get(ENV_KVN, "0"), ENV_KVN))
    raise ConfigurationError(
        f"no GlobalPlatform keys: set {ENV_KEY} (or {ENV_KEY}_ENC/_MAC/_DEK), give a key profile "
        f"(--key-profile or ${ENV_PROFILE}), or pass --dev-keys for the public test keys 40..4F")
