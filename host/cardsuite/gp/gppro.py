"""A thin wrapper for a user-supplied GlobalPlatformPro (`gp.jar`, CARDSUITE_GP_JAR).

cardsuite has its own client (cardsuite.gp); this runs the tool field loaders know, with the same
results and errors. Keys go to gp.jar through its environment variables (GP_KEY_ENC, GP_KEY_MAC,
GP_KEY_DEK, GP_KEY_VER: GlobalPlatformPro's PlaintextKeys.fromEnvironment), never through its command
line, and always explicitly: without keys gp.jar quietly falls back to the test key 40..4F, which is
how cards get locked. Verbose and debug options are never passed (gp.jar then prints its GP_*
environment), and anything that looks like one of the keys is masked in the output kept.

`--list` output (GPCommands.listRegistry) is parsed into cardsuite.gp's CardContents; failures become
GPError with the status word, card cryptogram failures CardCryptogramError; the brick guard applies.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cardsuite.codec import parse_aid
from cardsuite.errors import CardsuiteError, ConfigurationError
from cardsuite.gp.client import (
    CARD_STATES,
    PRIVILEGE_NAMES,
    Application,
    AuthenticationError,
    CardContents,
    GPError,
    LoadFile,
    encode_privileges,
)
from cardsuite.gp.guard import BrickGuard
from cardsuite.gp.scp import CardCryptogramError, KeySet
from cardsuite.settings import ENV_GP_JAR

_SW = re.compile(r"\b(?:0x|SW[=: ]*)?(6[0-9A-F]{3})\b", re.IGNORECASE)
_ENTRY = re.compile(r"^(ISD|APP|SSD|PKG|ExM|DOM|SD): ([0-9A-Fa-f]+) \(([^)]*)\)")
_FIELD = re.compile(r"^\s+(Parent|From|Privs|Version|Applet):\s*(.*)$")
_STATES = {"LOADED": 0x01, "INSTALLED": 0x03, "SELECTABLE": 0x07, "PERSONALIZED": 0x0F, "LOCKED": 0x83,
           **CARD_STATES}
_CARD_STATE_OPTIONS = {"INITIALIZED": "--initialize-card", "SECURED": "--secure-card",
                       "CARD_LOCKED": "--lock-card", "UNLOCKED": "--unlock-card"}


class GPProError(CardsuiteError):
    """gp.jar failed without a status word to tell why."""


@dataclass
class GPProResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    output: list[str] = field(default_factory=list)


def _aid(text: str) -> bytes:
    return parse_aid(text, "an AID in the gp tool's output")


def parse_list_output(text: str) -> CardContents:
    """`gp --list` into CardContents: `KIND: AID (STATE)` lines, each followed by indented fields."""
    isd: Application | None = None
    apps: list[Application] = []
    files: list[LoadFile] = []
    current: dict | None = None

    def flush() -> None:
        nonlocal isd
        if current is None:
            return
        kind, aid, state = current["kind"], current["aid"], current["state"]
        life = _STATES.get(state.upper(), 0)
        if kind in ("PKG", "ExM"):
            version = tuple(int(x) for x in current["Version"].split(".")) if current.get("Version") else None
            files.append(LoadFile(aid, life, bytes(version) if version else None, tuple(current["Applet"]),
                                  current.get("Parent")))
            return
        names = [n for n in current.get("Privs", "").strip("[]").replace(" ", "").split(",") if n]
        known = [n for n in names if n in PRIVILEGE_NAMES]
        kind = {"ISD": "ISD", "SSD": "SSD", "DOM": "SSD", "SD": "SSD"}.get(kind, "APP")
        entry = Application(aid, life, encode_privileges(known), kind, current.get("From"), current.get("Parent"))
        if kind == "ISD":
            isd = entry
        else:
            apps.append(entry)

    for line in text.splitlines():
        match = _ENTRY.match(line)
        if match:
            flush()
            current = {"kind": match[1], "aid": _aid(match[2]), "state": match[3], "Applet": []}
            continue
        field_match = _FIELD.match(line)
        if field_match and current is not None:
            name, value = field_match[1], field_match[2].strip()
            if name == "Applet":
                current["Applet"].append(_aid(value.split()[0]))
            elif name in ("Parent", "From"):
                current[name] = _aid(value.split()[0]) if value else None
            else:
                current[name] = value
    flush()
    return CardContents(isd, apps, files)


class GPPro:
    """Runs gp.jar against one reader. ``identity`` names the card for the brick guard (default: the reader)."""

    def __init__(self, jar: Path | str, reader: str | None = None, *, java: str = "java",
                 guard: BrickGuard | None = None, identity: str | None = None, timeout: float = 300) -> None:
        self.jar = Path(jar)
        if not self.jar.is_file():
            raise ConfigurationError(f"gp.jar not found at {self.jar} (set {ENV_GP_JAR} to GlobalPlatformPro's gp.jar)")
        if shutil.which(java) is None:
            raise ConfigurationError(f"no Java runtime ({java!r}) to run gp.jar; install a JDK 11 or later")
        self.java = java
        self.reader = reader
        self.guard = guard
        self.identity = identity or f"gppro-reader:{reader or '(first)'}"
        self.timeout = timeout

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None, **kwargs: object) -> GPPro:
        env = os.environ if env is None else env
        jar = env.get(ENV_GP_JAR)
        if not jar:
            raise ConfigurationError(f"no GlobalPlatformPro configured: set {ENV_GP_JAR} to the path of a gp.jar")
        return cls(jar, **kwargs)  # type: ignore[arg-type]

    def command(self, args: Sequence[str]) -> list[str]:
        reader = ["--reader", self.reader] if self.reader else []
        return [self.java, "-jar", str(self.jar), *reader, *args]

    @staticmethod
    def environment(keys: KeySet, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The process environment for gp.jar: ours without any GP_* variable, plus exactly these keys."""
        env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("GP_")}
        env.update(GP_KEY_ENC=keys.enc.hex().upper(), GP_KEY_MAC=keys.mac.hex().upper(),
                   GP_KEY_DEK=keys.dek.hex().upper(), GP_KEY_VER=f"0x{keys.kvn:02X}")
        if keys.kvn == 0:
            del env["GP_KEY_VER"]
        return env

    @staticmethod
    def _mask(text: str, keys: KeySet) -> str:
        for key in {keys.enc, keys.mac, keys.dek}:
            text = re.sub(key.hex(), "[key masked]", text, flags=re.IGNORECASE)
        return text

    def run(self, args: Sequence[str], keys: KeySet, force: bool = False, operation: str = "gp.jar") -> GPProResult:
        if any(a in ("-v", "--verbose", "-d", "--debug", "-i", "--info") for a in args):
            raise ConfigurationError("gp.jar's verbose, debug and info options print its key variables; not passed")
        if self.guard is not None:
            self.guard.check(self.identity, keys, force)
        try:
            done = subprocess.run(self.command(args), env=self.environment(keys), capture_output=True, text=True,
                                  timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise GPProError(f"{operation}: gp.jar did not finish within {self.timeout:.0f} s") from None
        result = GPProResult(list(args), done.returncode, self._mask(done.stdout, keys), self._mask(done.stderr, keys))
        self._check(result, keys, operation)
        if self.guard is not None:
            self.guard.record_success(self.identity, keys)
        return result

    def _check(self, result: GPProResult, keys: KeySet, operation: str) -> None:
        text = "\n".join(part for part in (result.stderr, result.stdout) if part)
        if result.returncode == 0:
            return
        errors = [line for line in text.splitlines() if re.search(r"error|fail|invalid", line, re.IGNORECASE)]
        message = (errors[-1] if errors else text.strip().splitlines()[-1] if text.strip() else "no output").strip()
        lowered = text.lower()
        if "cryptogram" in lowered:
            if self.guard is not None:
                self.guard.record_failure(self.identity, keys, f"gp.jar: {message}")
            raise CardCryptogramError(f"{operation}: wrong keys for this card ({message})")
        sws = [int(sw, 16) for sw in _SW.findall(message) or _SW.findall(text)]
        if sws:
            sw = sws[-1]
            if sw in (0x6300, 0x6983) or "authenticate" in lowered and sw == 0x6982:
                if self.guard is not None:
                    self.guard.record_failure(self.identity, keys, f"gp.jar: {message}", sw)
                raise AuthenticationError(sw, f"{operation} (authentication)")
            raise GPError(sw, operation)
        raise GPProError(f"{operation}: gp.jar failed (exit {result.returncode}): {message}")

    # -- operations
    def list(self, keys: KeySet, force: bool = False) -> CardContents:
        return parse_list_output(self.run(["--list"], keys, force, "gp.jar --list").stdout)

    def load(self, cap: Path, keys: KeySet, force: bool = False) -> GPProResult:
        return self.run(["--load", str(cap)], keys, force, f"gp.jar --load {cap.name}")

    def install(self, cap: Path, keys: KeySet, *, applet: bytes | None = None, instance: bytes | None = None,
                params: bytes = b"", privileges: Sequence[str] = (), force: bool = False) -> GPProResult:
        """Loads the CAP file when its package is not on the card yet, then installs (GPPro's --install)."""
        args = ["--install", str(cap)]
        if applet:
            args += ["--applet", applet.hex().upper()]
        if instance:
            args += ["--create", instance.hex().upper()]
        if params:
            args += ["--params", params.hex().upper()]
        if privileges:
            args += ["--privs", ",".join(privileges)]
        return self.run(args, keys, force, f"gp.jar --install {cap.name}")

    def delete(self, aid: bytes, keys: KeySet, related: bool = False, force: bool = False) -> GPProResult:
        args = ["--delete", aid.hex().upper()] + (["--force"] if related else [])
        return self.run(args, keys, force, f"gp.jar --delete {aid.hex().upper()}")

    def set_application_lock(self, aid: bytes, locked: bool, keys: KeySet, force: bool = False) -> GPProResult:
        option = "--lock-applet" if locked else "--unlock-applet"
        return self.run([option, aid.hex().upper()], keys, force, f"gp.jar {option}")

    def set_card_life_cycle(self, state: str, keys: KeySet, force: bool = False) -> GPProResult:
        option = _CARD_STATE_OPTIONS.get(state.upper())
        if option is None:
            raise ConfigurationError(f"gp.jar sets the card to {', '.join(_CARD_STATE_OPTIONS).lower()}, "
                                     f"not {state!r}")
        return self.run([option], keys, force, f"gp.jar {option}")
