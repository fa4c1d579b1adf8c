"""Where secrets come from: one policy for GlobalPlatform keys, the issuer's master secret, a wallet's transport
keys, the simulated card manager's keys, PINs and PUKs.

The policy (GlobalPlatformPro's and pySim's ``CardKeyProvider``'s, and what locks no card by accident):

* A secret comes from exactly one source: the environment, or a key file readable by its owner only (later an
  HSM: anything with ``get(name) -> bytes`` is a ``KeySource``). Never from the command line (``ps`` shows
  it) and never as a value in a profile (profiles are committed).
* Two sources at once is an error, not a silent preference: the user meant one of them and we cannot know
  which. A command-line option and the environment variable of the *same* setting are one source (the option
  wins, as everywhere in the CLI).
* No source is an error naming what is missing and every way to supply it.
* The public development keys only when asked for by name (``--dev-keys``, ``development = true``).

Only ``errors`` is imported: every layer above may use this.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cardsuite.codec import parse_hex
from cardsuite.errors import ConfigurationError

GP_DEVELOPMENT_KEY = bytes(range(0x40, 0x50))  # GlobalPlatform's well-known test key 40 41 .. 4F (public)
KEY_LENGTHS = (16, 24, 32)  # AES-128/192/256 (SCP03); 3DES two- and three-key (SCP02 uses 16)


class MissingSecret(ConfigurationError):
    """No source gives the secret; the message says how to supply it."""


class KeySource(Protocol):
    """Named secrets. ``get`` raises ``MissingSecret`` for a name it does not hold; ``describe`` says where
    a name is looked up, for messages (never the value). An HSM source would hand out handles instead of bytes
    for keys that never leave it; the callers here need the bytes (software SCP)."""

    def get(self, name: str) -> bytes: ...

    def describe(self, name: str) -> str: ...


def parse_key_list(text: str, where: str, count: int) -> tuple[bytes, ...]:
    """``count`` keys as "K1:K2:..." in hex, or one hex key for all of them (CARDSUITE_SIM_KEYS's form, which
    the bridge parses the same way); each 16, 24 or 32 bytes. Errors never show the text."""
    parts = text.strip().split(":")
    if len(parts) not in (1, count):
        raise ConfigurationError(f"{where} holds {len(parts)} keys: give {count} separated by ':' or one for all")
    keys = tuple(parse_hex(part, f"{where} (key {i + 1})", secret=True) for i, part in enumerate(parts))
    for i, key in enumerate(keys):
        if len(key) not in KEY_LENGTHS:
            raise ConfigurationError(f"{where} (key {i + 1}) must be 16, 24 or 32 bytes, got {len(key)}")
    return keys * count if len(keys) == 1 else keys


@dataclass(frozen=True)
class EnvironmentSource:
    """Variables of the environment (``os.environ`` unless given), values in hex."""

    env: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)

    def has(self, name: str) -> bool:
        return bool(self.env.get(name))

    def text(self, name: str, what: str | None = None) -> str:
        """The value as text (a PIN): present and non-empty, or an error naming the variable."""
        value = self.env.get(name)
        if not value:
            raise MissingSecret(f"{what or name} comes from the environment variable {name}, which is not set")
        return value

    def get(self, name: str) -> bytes:
        return parse_hex(self.text(name), self.describe(name), secret=True)

    def describe(self, name: str) -> str:
        return f"${name}"


@dataclass(frozen=True)
class KeyFileSource:
    """One secret in a file, as hex (one line) or as raw bytes; the file must be readable by its owner only
    (a key that others can read is a key they have). ``get`` ignores the name: the file is the secret."""

    path: Path
    what: str = "key file"

    def get(self, name: str = "") -> bytes:
        try:
            mode = self.path.stat().st_mode
            raw = self.path.read_bytes()
        except OSError as exc:
            raise MissingSecret(f"cannot read the {self.what} {self.path}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(f"the {self.what} {self.path} is readable by others: chmod 600 {self.path}")
        try:  # a hex key file, else the raw key bytes
            return parse_hex(raw.strip().decode("ascii"), self.describe(), secret=True)
        except (UnicodeDecodeError, ValueError):
            return raw

    def describe(self, name: str = "") -> str:
        return f"the {self.what} {self.path}"


@dataclass(frozen=True)
class DevelopmentSource:
    """The public development values, by name. Made only where the user asked for them by name."""

    values: Mapping[str, bytes] = field(repr=False)
    label: str = "--dev-keys"

    def get(self, name: str) -> bytes:
        if name not in self.values:
            raise MissingSecret(f"no development value for {name}")
        return self.values[name]

    def describe(self, name: str) -> str:
        return f"the public development keys ({self.label})"


@dataclass(frozen=True)
class Offer:
    """A source the user gave, and how they gave it ("--issuer-key-file", "$CARDSUITE_GP_KEY", "--dev-keys")."""

    label: str
    source: KeySource


def one_source(what: str, offers: Sequence[Offer | None], how: str) -> Offer:
    """The one source given for ``what`` among ``offers`` (None: not given). ``how`` lists every way to give
    one, for the error when there is none."""
    given = [offer for offer in offers if offer is not None]
    if len(given) > 1:
        labels = [offer.label for offer in given]
        listed = ", ".join(labels[:-1]) + f" and {labels[-1]}"
        raise ConfigurationError(f"{what} given twice: {listed} both given; use one source")
    if not given:
        raise MissingSecret(f"no {what}: {how}")
    return given[0]


def reference(value: str, where: str, base: Path, env: Mapping[str, str] | None = None) -> tuple[KeySource, str]:
    """A profile's reference to a secret: ``env:NAME`` (a variable) or ``file:PATH`` (a key file, relative to
    the profile's folder ``base``). Anything else is refused: a profile names where secrets are, never them."""
    if value.startswith("env:") and len(value) > 4:
        return EnvironmentSource(os.environ if env is None else env), value[4:]
    if value.startswith("file:") and len(value) > 5:
        return KeyFileSource(base / Path(value[5:]).expanduser(), f"key file of {where}"), ""
    raise ConfigurationError(f"{where} must be \"env:NAME\" or \"file:PATH\" (secrets come from the environment "
                             "or a key file, never from a profile)")
