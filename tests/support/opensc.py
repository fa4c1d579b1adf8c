"""OpenSC's command-line tools as a generic ISO/IEC 7816-4 client of a simulated card behind vpcd:
`opensc-explorer` scripted through its standard input with the generic driver (`-c default`, no MF
selected at start-up: the card has no applet selected then), `opensc-tool` for raw APDUs. Only the
outputs are parsed here; what they must say is in tests/fs/test_fs_opensc.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

import pytest

EXPLORER = "opensc-explorer"
TOOL = "opensc-tool"
TIMEOUT = 60.0  # seconds for one script; a selection by FID costs a few milliseconds over vpcd


def require_opensc() -> None:
    """Skips with the way out when OpenSC is not installed (`invoke setup` installs it)."""
    missing = [tool for tool in (EXPLORER, TOOL) if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: run `invoke setup` (apt package opensc)")


@dataclass(frozen=True)
class Run:
    """What one OpenSC process printed."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


@dataclass(frozen=True)
class OpenSC:
    """The tools on one PC/SC reader, named as pcscd lists it."""

    reader: str

    def explore(self, *lines: str) -> Run:
        """Runs the explorer's commands, one a line, in one session (the card stays connected)."""
        script = "\n".join((*lines, "quit")) + "\n"
        done = subprocess.run([EXPLORER, "-r", self.reader, "-c", "default", "--mf", ""], input=script,
                              capture_output=True, text=True, timeout=TIMEOUT)
        return Run(done.returncode, done.stdout, done.stderr)

    def tool(self, *args: str) -> Run:
        done = subprocess.run([TOOL, "-r", self.reader, "-c", "default", *args], capture_output=True, text=True,
                              timeout=TIMEOUT)
        return Run(done.returncode, done.stdout, done.stderr)


_FIELD = re.compile(r"^(?P<name>[A-Za-z][A-Za-z .]*?):\s+(?P<value>.*)$")
_HEADER = re.compile(r"^(?P<kind>[A-Za-z ]+?)\s+ID (?P<fid>[0-9A-F]{4})(?:, SFI (?P<sfi>[0-9A-F]{2}))?$")


def parse_info(text: str) -> list[dict[str, str]]:
    """The explorer's `info` blocks: each a dict of its 'Name: value' lines, plus 'kind', 'FID' and 'SFI'
    from the header line ('Working Elementary File  ID 5001, SFI 08')."""
    blocks: list[dict[str, str]] = []
    for line in text.splitlines():
        header = _HEADER.match(line.strip())
        if header:
            blocks.append({"kind": header["kind"], "FID": header["fid"], "SFI": header["sfi"] or ""})
            continue
        field = _FIELD.match(line.strip())
        if field and blocks:
            blocks[-1][field["name"].strip()] = field["value"].strip()
    return blocks


_DUMP = re.compile(r"^(?:[0-9A-F]{8}: )?(?P<hex>(?:[0-9A-F]{2} ){1,16})")


def parse_dump(text: str) -> bytes:
    """The bytes of OpenSC's hex dumps ('00000010: 31 32 33 ... 123...', the offset only in `cat`), in order."""
    out = bytearray()
    for line in text.splitlines():
        match = _DUMP.match(line)
        if match:
            out += bytes.fromhex(match["hex"])
    return bytes(out)


def parse_records(text: str) -> dict[int, bytes]:
    """`cat` of a record EF: 'Record n:' followed by the dump of record n."""
    records: dict[int, bytes] = {}
    current: int | None = None
    lines: list[str] = []
    for line in [*text.splitlines(), "Record 0:"]:
        match = re.match(r"^Record (\d+):$", line.strip())
        if match:
            if current is not None:
                records[current] = parse_dump("\n".join(lines))
            current, lines = int(match.group(1)), []
        else:
            lines.append(line)
    records.pop(0, None)
    return records


def parse_find(text: str) -> dict[int, tuple[str, int]]:
    """`find`: file identifier → (type as OpenSC shows it: 'wEF', 'DF', ..., size)."""
    found: dict[int, tuple[str, int]] = {}
    for line in text.replace("\r", "\n").splitlines():
        match = re.match(r"^[ \[]([0-9A-F]{4})[ \]]\s+(\S+)\s+(\d+)", line)
        if match:
            found[int(match.group(1), 16)] = (match.group(2), int(match.group(3)))
    return found


_RECEIVED = re.compile(r"Received \(SW1=0x(?P<sw1>[0-9A-Fa-f]{2}), SW2=0x(?P<sw2>[0-9A-Fa-f]{2})\)"
                       r"(?::\n(?P<dump>(?:[0-9A-F]{2} .*\n?)*))?")


def parse_apdu_response(text: str) -> tuple[bytes, int]:
    """`opensc-tool -s` / the explorer's `apdu`: (response data, status word) of the last exchange."""
    answers = list(_RECEIVED.finditer(text))
    if not answers:
        raise AssertionError(f"no response in:\n{text}")
    last = answers[-1]
    return parse_dump(last["dump"] or ""), int(last["sw1"] + last["sw2"], 16)
