"""Where GlobalPlatform keys come from: the environment, or a key profile naming variables or key files; never
the command line, never a key value in a profile. The one policy is ``cardsuite.keysource``'s.

Environment: ``CARDSUITE_GP_KEY`` (one key for ENC, MAC and DEK) or ``CARDSUITE_GP_KEY_ENC``,
``_MAC`` and ``_DEK`` together; ``CARDSUITE_GP_KVN`` the key version number (decimal or 0x..).

Key profile ([P000]: key version, key references, where the keys come from), TOML, read the same way by
``cardsuite gp --key-profile`` and by ``cardsuite deploy`` (a card profile's ``keys``)::

    kvn = 0x30                 # key version number; 0 lets the card pick its default set
    scp = 3                    # optional: the protocol the card must offer (2 or 3)
    [keys]
    key = "env:SHOP_GP_KEY"    # or enc/mac/dek separately; "env:NAME" or "file:PATH" (relative to the profile)

Diversified keys (issued cards): ``kdf = "emv"`` (or ``"visa2"``, ``"kdf3"``) and ``[keys] master = "env:NAME"``;
each card's ENC, MAC and DEK are derived from the master key and the key diversification data the card
returns in INITIALIZE UPDATE (diversify_emv, diversify_visa2, diversify_kdf3).

Key rotation (``cardsuite deploy``): ``rotate_to = "issuer.toml"`` names another key profile (relative to this
one); a deploy authenticating with these (transport) keys replaces them with those (PUT KEY).

Key values never go into a profile: profiles live in the repository (``profiles/``), are copied, reviewed and
committed, and a key written into one is a published key. The one exception names no secret:
``development = true`` says the profile means the public test keys 40..4F (then ``key`` may be exactly those,
or be left out). A key file must be readable by its owner only.

The public development keys are used only when asked for by name (``--dev-keys``, ``development = true``):
a quiet fallback to them is how cards get locked.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cardsuite.codec import parse_hex
from cardsuite.crypto.aes import aes_cmac
from cardsuite.crypto.des import tdes_ecb
from cardsuite.errors import ConfigurationError
from cardsuite.gp.scp import KeySet
from cardsuite.keysource import (
    GP_DEVELOPMENT_KEY,
    DevelopmentSource,
    EnvironmentSource,
    KeySource,
    Offer,
    one_source,
    reference,
)
from cardsuite.settings import (
    ENV_GP_KEY,
    ENV_GP_KEY_DEK,
    ENV_GP_KEY_ENC,
    ENV_GP_KEY_MAC,
    ENV_GP_KEY_PROFILE,
    ENV_GP_KVN,
)

DEVELOPMENT_KEY = GP_DEVELOPMENT_KEY
ROLES = ("enc", "mac", "dek")
_ROLE_VARIABLES = {"enc": ENV_GP_KEY_ENC, "mac": ENV_GP_KEY_MAC, "dek": ENV_GP_KEY_DEK}
_PROFILE_ENTRIES = {"kvn", "scp", "development", "keys", "description", "kdf", "rotate_to"}


# ---------------------------------------------------------------- diversification

# Key number of each static key in the derivation data (EMV CPG 2.1 5.4.2; GlobalPlatform's key identifiers)
_KEY_NUMBERS = {"enc": 0x01, "mac": 0x02, "dek": 0x03}
KDD_LENGTH = 10  # key diversification data in the INITIALIZE UPDATE response ([GPCS] E.5.1.6, [AmD] 7.1.1.6)


def _kdd(div_data: bytes) -> bytes:
    if len(div_data) != KDD_LENGTH:
        raise ConfigurationError(f"key diversification data has {KDD_LENGTH} bytes, got {len(div_data)}")
    return div_data


def _des_diversified(master: bytes, six: bytes, kdf: str, kvn: int) -> KeySet:
    """EMV CPG 2.1 and VISA2 share the shape: for key number k, 3DES-ECB under the master key of
    six || F0 || k || six || 0F || k (16 bytes: a two-key 3DES key)."""
    if len(master) != 16:
        raise ConfigurationError(f"{kdf} diversification derives two-key 3DES keys: a 3DES master key has 16 "
                                 f"bytes, got {len(master)} (AES keys: kdf3)")
    keys = {role: tdes_ecb(master, six + bytes((0xF0, k)) + six + bytes((0x0F, k)))
            for role, k in _KEY_NUMBERS.items()}
    return KeySet(keys["enc"], keys["mac"], keys["dek"], kvn)


def diversify_emv(master: bytes, div_data: bytes, kvn: int = 0) -> KeySet:
    """EMV Card Personalisation Specification 2.1, 5.4.2 (EMV CPG 2.1): the six bytes are the last six of
    the key diversification data (bytes 4..9: the chip's identification, CPLC IC serial number and more)."""
    return _des_diversified(master, _kdd(div_data)[4:10], "emv", kvn)


def diversify_visa2(master: bytes, div_data: bytes, kvn: int = 0) -> KeySet:
    """VISA2 (Visa GlobalPlatform 2.1.1 Card Implementation Requirements): the six bytes are KDD bytes 0..1
    (IC fabricator) and 4..7 (IC serial number)."""
    kdd = _kdd(div_data)
    return _des_diversified(master, kdd[0:2] + kdd[4:8], "visa2", kvn)


def diversify_kdf3(master: bytes, div_data: bytes, kvn: int = 0) -> KeySet:
    """KDF3 (SCP03 cards, gp --key-kdf kdf3): NIST SP 800-108 in counter mode with AES-CMAC under the master
    key, an 8-bit counter first, then the fixed data 00 00 00 || k || 00 || KDD; as many bytes as the master
    key has (AES-128/192/256)."""
    kdd = _kdd(div_data)
    if len(master) not in (16, 24, 32):
        raise ConfigurationError(f"kdf3 derives AES keys from an AES master key (16, 24 or 32 bytes), got "
                                 f"{len(master)}")

    def derive(k: int) -> bytes:
        out, counter = b"", 1
        while len(out) < len(master):
            out += aes_cmac(master, bytes((counter, 0, 0, 0, k, 0)) + kdd)
            counter += 1
        return out[: len(master)]

    keys = {role: derive(k) for role, k in _KEY_NUMBERS.items()}
    return KeySet(keys["enc"], keys["mac"], keys["dek"], kvn)


DIVERSIFICATIONS = {"emv": diversify_emv, "visa2": diversify_visa2, "kdf3": diversify_kdf3}
KDF_NAMES = tuple(DIVERSIFICATIONS)  # GlobalPlatformPro's --key-kdf names


class MasterKeys(KeySet):
    """A master key with its diversification: the card's own keys come from ``for_card`` once INITIALIZE UPDATE
    has given the key diversification data. ``enc``, ``mac`` and ``dek`` hold the master key (never sent)."""

    kdf: str = "emv"

    @classmethod
    def of(cls, master: bytes, kdf: str, kvn: int = 0) -> MasterKeys:
        if kdf not in DIVERSIFICATIONS:
            raise ConfigurationError(f"key diversification {kdf!r}: valid are {', '.join(DIVERSIFICATIONS)}")
        keys = cls(master, master, master, kvn)
        object.__setattr__(keys, "kdf", kdf)
        return keys

    def for_card(self, key_diversification_data: bytes) -> KeySet:
        return DIVERSIFICATIONS[self.kdf](self.enc, key_diversification_data, self.kvn)

    @property
    def fingerprint_material(self) -> bytes:
        return self.kdf.encode() + super().fingerprint_material

    def __repr__(self) -> str:
        return f"MasterKeys(kvn=0x{self.kvn:02X}, kdf={self.kdf}, {len(self.enc) * 8}-bit master)"


@dataclass(frozen=True)
class KeyChoice:
    """Keys and where they came from (for messages; never the values)."""

    keys: KeySet
    source: str
    scp: int | None = None


def _key(value: bytes, where: str) -> bytes:
    if len(value) not in (16, 24, 32):
        raise ConfigurationError(f"{where} must be 16, 24 or 32 bytes, got {len(value)}")
    return value


def _hex_key(text: str, where: str) -> bytes:
    return _key(parse_hex(text, where, secret=True), where)


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
    parts = {role: env.get(variable) for role, variable in _ROLE_VARIABLES.items()}
    single = env.get(ENV_GP_KEY)
    given = [name for name, value in parts.items() if value]
    if single and given:
        raise ConfigurationError(f"set either {ENV_GP_KEY} or {ENV_GP_KEY}_ENC/_MAC/_DEK, not both")
    if given and len(given) != 3:
        missing = ", ".join(_ROLE_VARIABLES[n] for n in parts if n not in given)
        raise ConfigurationError(f"{ENV_GP_KEY}_ENC, _MAC and _DEK go together; missing {missing}")
    if not single and not given:
        return None
    version = kvn if kvn is not None else parse_kvn(env.get(ENV_GP_KVN, "0"), ENV_GP_KVN)
    if single:
        return KeyChoice(KeySet.single(_hex_key(single, ENV_GP_KEY), version), f"${ENV_GP_KEY}")
    keys = {n: _hex_key(v or "", _ROLE_VARIABLES[n]) for n, v in parts.items()}
    return KeyChoice(KeySet(keys["enc"], keys["mac"], keys["dek"], version), f"${ENV_GP_KEY}_ENC/_MAC/_DEK")


# ---------------------------------------------------------------- key profile


@dataclass(frozen=True)
class KeyProfile:
    """A key profile checked on load (structure and policy); the keys themselves are read by ``resolve``,
    when they are needed, from the sources the profile names."""

    path: Path
    kvn: int = 0
    scp: int | None = None
    development: bool = False
    references: Mapping[str, str] = field(default_factory=dict)  # key or enc/mac/dek -> "env:NAME"/"file:PATH"
    kdf: str | None = None  # diversification of a master key (keys.master): emv, visa2, kdf3
    rotate_to: KeyProfile | None = None  # the issuer keys a deploy puts in place of these (PUT KEY)

    def bind(self, env: Mapping[str, str] | None = None) -> BoundProfile:
        return BoundProfile(self, os.environ if env is None else env)

    def resolve(self, env: Mapping[str, str] | None = None) -> KeyChoice:
        """The keys, read now from the environment or the key files (or the public development keys)."""
        return self.bind(env).choice()


@dataclass(frozen=True)
class BoundProfile:
    """A key profile as a ``KeySource`` of the roles enc, mac and dek, reading the sources it names."""

    profile: KeyProfile
    env: Mapping[str, str] = field(repr=False)

    def get(self, name: str) -> bytes:
        if self.profile.development:
            return DEVELOPMENT_KEY
        role = next((r for r in ("key", "master") if r in self.profile.references), name)
        where = f"keys.{role} in {self.profile.path}"
        source, key_name = reference(self.profile.references[role], where, self.profile.path.parent, self.env)
        if isinstance(source, EnvironmentSource):
            return _hex_key(source.text(key_name, where), f"${key_name} ({where})")
        return _key(source.get(key_name), where)

    def describe(self, name: str) -> str:
        return f"key profile {self.profile.path}"

    def choice(self) -> KeyChoice:
        profile = self.profile
        if profile.development:
            return KeyChoice(KeySet.single(DEVELOPMENT_KEY, profile.kvn),
                             f"the public development keys 40..4F (key profile {profile.path.name})", profile.scp)
        if profile.kdf is not None:
            keys: KeySet = MasterKeys.of(self.get("master"), profile.kdf, profile.kvn)
        elif "key" in profile.references:
            keys = KeySet.single(self.get("key"), profile.kvn)
        else:
            keys = KeySet(*(self.get(role) for role in ROLES), profile.kvn)
        return KeyChoice(keys, self.describe(""), profile.scp)


def _read_profile(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"cannot read the key profile {path}: it does not exist") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read the key profile {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:  # TOML 1.0: a document is UTF-8 text
        raise ConfigurationError(f"the key profile {path} is not a TOML text file (not UTF-8 at byte "
                                 f"{exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"the key profile {path} is not valid TOML: {exc}") from None


def load_key_profile(path: Path, _seen: tuple[Path, ...] = ()) -> KeyProfile:
    """The one key profile parser (``cardsuite gp --key-profile`` and ``cardsuite deploy``): structure first,
    then the policy (references only; a literal only for ``development = true`` and only the public key)."""
    data = _read_profile(path)
    where = f"key profile {path}"
    unknown = set(data) - _PROFILE_ENTRIES
    if unknown:
        raise ConfigurationError(f"{where}: unknown entries {', '.join(sorted(unknown))} "
                                 f"(valid: {', '.join(sorted(_PROFILE_ENTRIES))})")
    development = data.get("development", False)
    if not isinstance(development, bool):
        raise ConfigurationError(f"{where}: development must be true or false")
    scp = data.get("scp")
    if scp not in (None, 2, 3):
        raise ConfigurationError(f"scp in {where} must be 2 or 3, got {scp!r}")
    kvn = parse_kvn(data.get("kvn", 0), f"kvn in {where}")
    if "keys" not in data and not development:
        raise ConfigurationError(f"{where}: no keys (no [keys] table): give [keys] key = \"env:NAME\" or "
                                 "\"file:PATH\" (or enc/mac/dek), or development = true for the public test keys")
    keys = data.get("keys", {})
    if not isinstance(keys, dict):
        raise ConfigurationError(f"{where}: [keys] must be a table")
    unknown = set(keys) - {"key", "master", *ROLES}
    if unknown:
        raise ConfigurationError(f"{where}: unknown entries {', '.join(sorted(unknown))} in [keys] "
                                 "(valid: key, master, enc, mac, dek)")
    kdf = data.get("kdf")
    if kdf is not None and kdf not in DIVERSIFICATIONS:
        raise ConfigurationError(f"{where}: kdf must be one of {', '.join(DIVERSIFICATIONS)}, got {kdf!r}")
    if (kdf is None) != ("master" not in keys):
        raise ConfigurationError(f"{where}: a diversified key set gives kdf (emv, visa2, kdf3) and [keys] master "
                                 "together")
    if kdf is not None and (len(keys) > 1 or development):
        raise ConfigurationError(f"{where}: with kdf, [keys] holds only master (the card's keys are derived)")
    if "key" in keys and len(keys) > 1:
        raise ConfigurationError(f"{where}: give key, or enc/mac/dek, not both")
    missing = [n for n in ROLES if n not in keys]
    if keys and "key" not in keys and "master" not in keys and missing:
        raise ConfigurationError(f"{where}: [keys] lacks {', '.join(missing)}")
    references: dict[str, str] = {}
    for name, value in keys.items():
        if not isinstance(value, str):
            raise ConfigurationError(f"{where}: keys.{name} must be a string (\"env:NAME\" or \"file:PATH\")")
        if value.startswith(("env:", "file:")):
            references[name] = value
            continue
        try:
            literal = parse_hex(value, f"{where}: keys.{name}", secret=True)
        except ValueError:
            literal = b""
        if not (development and literal == DEVELOPMENT_KEY):
            raise ConfigurationError(
                f"{where}: keys.{name} holds a key value; key profiles name where keys come from "
                "(\"env:NAME\" or \"file:PATH\"), since a profile may be committed; only the public test keys "
                "40..4F may appear, with development = true")
    if development and references:
        raise ConfigurationError(f"{where}: development = true uses the public test keys; drop the references")
    if not development and not references:
        raise ConfigurationError(f"{where}: no keys: give [keys] key = \"env:NAME\" (or enc/mac/dek), "
                                 "or development = true for the public test keys")
    rotate_to = None
    if "rotate_to" in data:
        target = data["rotate_to"]
        if not isinstance(target, str) or not target:
            raise ConfigurationError(f"{where}: rotate_to must be the path of another key profile")
        target_path = (path.parent / target).resolve()
        if target_path in (*_seen, path.resolve()):
            raise ConfigurationError(f"{where}: rotate_to leads back to {target_path} (a rotation cycle)")
        rotate_to = load_key_profile(target_path, (*_seen, path.resolve()))
        if rotate_to.development:
            raise ConfigurationError(f"{where}: rotate_to names the public development keys; rotate to issuer keys")
    return KeyProfile(path, kvn, scp, development, references, kdf, rotate_to)


# ---------------------------------------------------------------- the one choice


def development_keys(kvn: int = 0) -> KeyChoice:
    return KeyChoice(KeySet.single(DEVELOPMENT_KEY, kvn), "the public development keys 40..4F (--dev-keys)")


DEVELOPMENT_SOURCE: KeySource = DevelopmentSource(dict.fromkeys(ROLES, DEVELOPMENT_KEY))


def resolve_keys(profile: Path | None = None, dev_keys: bool = False, kvn: int | None = None,
                 env: Mapping[str, str] | None = None) -> KeyChoice:
    """The keys to use: from a key profile, the environment, or the development keys when (and only when)
    asked for; exactly one of them (``cardsuite.keysource.one_source``)."""
    env = os.environ if env is None else env
    if profile is None and env.get(ENV_GP_KEY_PROFILE):
        profile = Path(env[ENV_GP_KEY_PROFILE])  # --key-profile and its variable are one setting: the option wins
    from_env = keys_from_environment(env, kvn)
    chosen = one_source("GlobalPlatform keys", [
        Offer("a key profile", load_key_profile(profile).bind(env)) if profile is not None else None,
        Offer(f"${ENV_GP_KEY}*", EnvironmentSource(env)) if from_env is not None else None,
        Offer("--dev-keys", DEVELOPMENT_SOURCE) if dev_keys else None,
    ], how=f"set {ENV_GP_KEY} (or {ENV_GP_KEY}_ENC/_MAC/_DEK), give a key profile (--key-profile or "
           f"${ENV_GP_KEY_PROFILE}), or pass --dev-keys for the public test keys 40..4F")
    if isinstance(chosen.source, BoundProfile):
        choice = chosen.source.choice()
        if kvn is not None:
            keys = KeySet(choice.keys.enc, choice.keys.mac, choice.keys.dek, kvn)
            choice = KeyChoice(keys, choice.source, choice.scp)
        return choice
    if from_env is not None:
        return from_env
    assert chosen.label == "--dev-keys"
    return development_keys(kvn if kvn is not None else parse_kvn(env.get(ENV_GP_KVN, "0"), ENV_GP_KVN))


def diversify(kdf: str, master: bytes, div_data: bytes) -> KeySet:
    """One of KDF_NAMES by name."""
    if kdf not in DIVERSIFICATIONS:
        raise ConfigurationError(f"key diversification {kdf!r}: use one of {', '.join(KDF_NAMES)}")
    return DIVERSIFICATIONS[kdf](master, div_data)
