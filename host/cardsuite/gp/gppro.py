"""A thin wrapper for a user-supplied GlobalPlatformPro (`gp.jar`, CARDSUITE_GP_JAR).

cardsuite has its own client (cardsuite.gp); this runs the tool field loaders know, with the same
results and errors. Keys go to gp.jar through its environment variables (GP_KEY_ENC, GP_KEY_MAC,
GP_KEY_DEK, GP_KEY_VER: GlobalPlatformPro's PlaintextKeys.fromEnvironment), never through its command
line, and always explicitly: without keys gp.jar quietly falls back to the test key 40..4F, which is
how cards get locked. A master key goes as GP_KEY with GP_KEY_KDF (emv, visa2, kdf3). Verbose and debug
options are never passed by a caller (gp.jar then prints its GP_* environment); the wrapper itself runs a LOAD
with -d only to count the LOAD commands for progress, reading that output as it comes and keeping none of it.
Anything that looks like one of the keys is masked in the output kept.

What gp.jar 26.02.11 gets wrong is done here instead: install parameters are wrapped as C9 (it throws on
parameters that are not a TLV), and another instance of a package already on the card is created with
``--create INSTANCE --package P --applet A`` (``--install`` always sends INSTALL [for load] again, and
``--install-only`` ignores ``--create``).

`--list` output (GPCommands.listRegistry) is parsed into cardsuite.gp's CardContents; every failure becomes one
error: GPError with the status word and its meaning, CardCryptogramError for wrong keys, GPProError with gp.jar's
own last error line otherwise; the brick guard applies.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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
from cardsuite.gp.keys import MasterKeys
from cardsuite.gp.perso import split_objects
from cardsuite.gp.scp import CardCryptogramError, KeySet, SecurityLevel
from cardsuite.settings import ENV_GP_JAR
from cardsuite.tlv import TlvError, encode_tlv, parse_tlv
from cardsuite.tooling.cap import read_cap

_SW = re.compile(r"\b(?:0x|SW[=: ]*)?(6[0-9A-F]{3})\b", re.IGNORECASE)
_ENTRY = re.compile(r"^(ISD|APP|SSD|PKG|ExM|DOM|SD): ([0-9A-Fa-f]+) \(([^)]*)\)")
_FIELD = re.compile(r"^\s+(Parent|From|Privs|Version|Applet):\s*(.*)$")
_STATES = {"LOADED": 0x01, "INSTALLED": 0x03, "SELECTABLE": 0x07, "PERSONALIZED": 0x0F, "LOCKED": 0x83,
           **CARD_STATES}
_CARD_STATE_OPTIONS = {"INITIALIZED": "--initialize-card", "SECURED": "--secure-card",
                       "CARD_LOCKED": "--lock-card", "UNLOCKED": "--unlock-card"}


# A LOAD command in gp.jar's -d trace (apdu4j: "A>> T=1 (4+0255) 84E80001 FF ..."): CLA 80/84, INS E8, P1
_LOAD_TRACE = re.compile(r">>.*?\b8[04]E8([0-9A-F]{2})", re.IGNORECASE)
LOAD_BLOCK = 223  # --bs for a LOAD (command data with its MAC): fits every level, S16 and padding included
_MODE_BITS = ((SecurityLevel.C_MAC, "mac"), (SecurityLevel.C_DECRYPTION, "enc"), (SecurityLevel.R_MAC, "rmac"),
              (SecurityLevel.R_ENCRYPTION, "renc"))
Progress = Callable[[int, int], None]
# "Exception in thread "main" java.lang.IllegalArgumentException: Insufficient data": keep what follows
_JAVA_EXCEPTION = re.compile(r'^.*?(?:Exception|Error)(?: in thread "[^"]*")?:\s*(?:[\w.$]+(?:Exception|Error):\s*)?')


class GPProError(CardsuiteError):
    """gp.jar failed without a status word to tell why."""


def gp_modes(level: int) -> list[str]:
    """A security level as gp.jar's --mode values (each option repeated: --mode mac --mode enc)."""
    return [name for bit, name in _MODE_BITS if level & bit] or ["clr"]


def c9_params(params: bytes) -> bytes:
    """The applet's install parameters as gp.jar must receive them: a C9 TLV ([GPCS] 11.5.2.3.7), unless
    they already are exactly one."""
    try:
        items = parse_tlv(params)
    except TlvError:
        items = []
    if len(items) == 1 and items[0][0] == 0xC9 and encode_tlv(0xC9, items[0][1]) == params:
        return params
    return encode_tlv(0xC9, params)


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
        if isinstance(keys, MasterKeys):  # gp.jar diversifies per card itself (PlaintextKeys' kdf templates)
            env.update(GP_KEY=keys.enc.hex().upper(), GP_KEY_KDF=keys.kdf, GP_KEY_VER=f"0x{keys.kvn:02X}")
        else:
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

    def run(self, args: Sequence[str], keys: KeySet, force: bool = False, operation: str = "gp.jar", *,
            progress: Progress | None = None, total: int = 0) -> GPProResult:
        if any(a in ("-v", "--verbose", "-d", "--debug", "-i", "--info") for a in args):
            raise ConfigurationError("gp.jar's verbose, debug and info options print its key variables; not passed")
        if self.guard is not None:
            self.guard.check(self.identity, keys, force)
        if progress is None:
            try:
                done = subprocess.run(self.command(args), env=self.environment(keys), capture_output=True, text=True,
                                      timeout=self.timeout, check=False)
            except subprocess.TimeoutExpired:
                raise GPProError(f"{operation}: gp.jar did not finish within {self.timeout:.0f} s") from None
            stdout, stderr, returncode = done.stdout, done.stderr, done.returncode
        else:
            stdout, stderr, returncode = self._run_counting_loads(args, keys, operation, progress, total)
        result = GPProResult(list(args), returncode, self._mask(stdout, keys), self._mask(stderr, keys))
        self._check(result, keys, operation)
        if self.guard is not None:
            self.guard.record_success(self.identity, keys)
        return result

    def _run_counting_loads(self, args: Sequence[str], keys: KeySet, operation: str, progress: Progress,
                            total: int) -> tuple[str, str, int]:
        """gp.jar with -d, its trace read line by line as it comes: each LOAD command moves the progress, and
        no trace line is kept (they hold the GP_* key variables and every APDU). Only gp.jar's error lines are
        kept: stderr, and stdout lines that are not trace lines."""
        process = subprocess.Popen(self.command(["-d", *args]), env=self.environment(keys), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        expired = threading.Event()
        timer = threading.Timer(self.timeout, lambda: (expired.set(), process.kill()))
        timer.start()
        kept: list[str] = []
        errors: list[str] = []
        reader = threading.Thread(target=lambda: errors.extend(process.stderr or ()), daemon=True)
        reader.start()
        count = 0
        try:
            for line in process.stdout or ():
                match = _LOAD_TRACE.search(line)
                if match:
                    count += 1
                    last = int(match[1], 16) & 0x80
                    total = max(total, count)
                    progress(total if last else count, total)
                elif not re.search(r"^#|>>|<<|^\[", line) and re.search(r"error|fail|invalid", line, re.IGNORECASE):
                    kept.append(line)
            returncode = process.wait()
        finally:
            timer.cancel()
            reader.join(timeout=5)
        if expired.is_set():
            raise GPProError(f"{operation}: gp.jar did not finish within {self.timeout:.0f} s")
        stderr = "".join(line for line in errors if not re.search(r">>|<<|GP_KEY", line))
        return "".join(kept), stderr, returncode

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
            if sw in (0x6300, 0x6983) or "authenticate" in lowered and sw == 0x6982 \
                    or "initialize update" in lowered and sw == 0x6A88:
                if self.guard is not None:
                    self.guard.record_failure(self.identity, keys, f"gp.jar: {message}", sw)
                raise AuthenticationError(sw, f"{operation} (authentication)")
            raise GPError(sw, operation)
        # gp.jar's own exceptions ("Exception in thread …: java.lang.IllegalArgumentException: …"): the message
        message = _JAVA_EXCEPTION.sub("", message) or message
        raise GPProError(f"{operation}: gp.jar failed (exit {result.returncode}): {message}")

    # -- operations (``options``: the session's, e.g. --mode, --s16)
    def list(self, keys: KeySet, force: bool = False, options: Sequence[str] = ()) -> CardContents:
        return parse_list_output(self.run(["--list", *options], keys, force, "gp.jar --list").stdout)

    def load(self, cap: Path, keys: KeySet, force: bool = False, options: Sequence[str] = (),
             progress: Progress | None = None) -> GPProResult:
        """LOAD of a CAP file; ``progress(done, total)`` after each LOAD command gp.jar sends."""
        # gp.jar 26.02.11 with --mode enc on SCP03 sizes --bs blocks for 3DES padding and cuts them wrongly: its own
        # block size there
        encrypted = "enc" in options
        block = 239 if encrypted else LOAD_BLOCK - 8  # plain data per LOAD, for the expected total
        total = -(-len(read_cap(cap).load_file()) // block) if progress is not None else 0
        sizing = [] if encrypted else ["--bs", str(LOAD_BLOCK)]
        return self.run(["--load", str(cap), *sizing, *options], keys, force, f"gp.jar --load {cap.name}",
                        progress=progress, total=total)

    def install(self, cap: Path | None, keys: KeySet, *, package: bytes | None = None, applet: bytes | None = None,
                instance: bytes | None = None, params: bytes = b"", privileges: Sequence[str] = (),
                force: bool = False, options: Sequence[str] = (), loaded: bool | None = None) -> GPProResult:
        """Installs an applet. The package is loaded first when it is not on the card (``--install CAP``);
        when it is (``loaded``, else asked with --list), the instance is created from it (``--create``), which
        is also how a second instance is made. Parameters go as C9."""
        if cap is not None:
            file = read_cap(cap)
            package = package or file.package_aid
            applet = applet or (file.applet_aids[0] if len(file.applet_aids) == 1 else None)
        if package is None or applet is None:
            raise ConfigurationError("gp.jar install: give a CAP file with one applet, or --package and --applet")
        if loaded is None:
            loaded = cap is None or self.list(keys, force, options).load_file(package) is not None
        if loaded:
            args = ["--create", (instance or applet).hex().upper(), "--package", package.hex().upper(),
                    "--applet", applet.hex().upper()]
        else:
            assert cap is not None
            args = ["--install", str(cap), "--applet", applet.hex().upper()]
            if instance:
                args += ["--create", instance.hex().upper()]
        if params:
            args += ["--params", c9_params(params).hex().upper()]
        if privileges:
            args += ["--privs", ",".join(privileges)]
        what = cap.name if cap is not None else package.hex().upper()
        return self.run([*args, *options], keys, force, f"gp.jar install {what}")

    def delete(self, aid: bytes, keys: KeySet, related: bool = False, force: bool = False,
               options: Sequence[str] = ()) -> GPProResult:
        args = ["--delete", aid.hex().upper()] + (["--force"] if related else [])
        return self.run([*args, *options], keys, force, f"gp.jar --delete {aid.hex().upper()}")

    def set_application_lock(self, aid: bytes, locked: bool, keys: KeySet, force: bool = False,
                             options: Sequence[str] = ()) -> GPProResult:
        option = "--lock-applet" if locked else "--unlock-applet"
        return self.run([option, aid.hex().upper(), *options], keys, force, f"gp.jar {option}")

    def set_card_life_cycle(self, state: str, keys: KeySet, force: bool = False,
                            options: Sequence[str] = ()) -> GPProResult:
        option = _CARD_STATE_OPTIONS.get(state.upper())
        if option is None:
            raise ConfigurationError(f"gp.jar sets the card to {', '.join(_CARD_STATE_OPTIONS).lower()}, "
                                     f"not {state!r}")
        return self.run([option, *options], keys, force, f"gp.jar {option}")

    def store_dgi_file(self, data: bytes, keys: KeySet, *, app: bytes | None = None, force: bool = False,
                       options: Sequence[str] = ()) -> GPProResult:
        """STORE DATA of DGI data (``--store-dgi-file``, one DGI per command), to ``app`` through INSTALL [for
        personalization] (``--personalize``). The file gp.jar reads (``DGIxxxx=VALUE`` lines) is private to
        this user and deleted afterwards: personalisation data may be secret."""
        with _dgi_file(data) as path:
            args = ["--store-dgi-file", str(path)] + (["--personalize", app.hex().upper()] if app else [])
            return self.run([*args, *options], keys, force, "gp.jar --store-dgi-file")


def dgi_lines(data: bytes) -> str:
    """DGI data (tag, length, value ...) as gp.jar's DGI file: one ``DGIxxxx=VALUE`` line per DGI."""
    lines = []
    for dgi in split_objects(data, "dgi"):
        head = 5 if dgi[2] == 0xFF else 3
        lines.append(f"DGI{dgi[:2].hex().upper()}={dgi[head:].hex().upper()}\n")
    return "".join(lines)


@contextmanager
def _dgi_file(data: bytes) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="cardsuite-dgi-"))  # mode 0700
    path = folder / "data.dgi"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(dgi_lines(data))
        yield path
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()
