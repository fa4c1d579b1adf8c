"""Commit buffer figures: for every command of every applet the tests exercise, the largest transaction it
needs, measured by the bridge (SimulatedCard.commitBytes: a 6-byte entry plus the overwritten bytes for each
journaled write, every write counted; host/simbridge WriteJournal) against the simulated card's default commit
buffer, 5,120 bytes as an NXP JCOP 4.

``run_commit_bench(project)`` runs the applets' test folders in a child pytest with CommitRecordPlugin, which
records after every in-process command the applet selected on the basic
channel, the INS and the commit bytes; it writes build/bench/commit.json. Tests that tear a command mid-way
count too: a torn command needs no more than the whole one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cardsuite.project import Project
from cardsuite.tooling.manifest import load_manifest

DEFAULT_CAPACITY = 5120  # the bridge's WriteJournal.DEFAULT_COMMIT_CAPACITY
ENTRY_HEADER = 6  # the bridge's WriteJournal.ENTRY_HEADER
TEST_FOLDERS = ("tests/wallet", "tests/ecash", "tests/fs", "tests/gp", "tests/deploy")
ISD_AID = bytes.fromhex("A000000151000000")  # the simulated card manager (GlobalPlatform ISD)
# the applets whose largest transaction must stay this far under the default (the README states it)
REQUIRED_MARGIN = {"wallet": 1024, "isoapplet": 1024}
_INS_SELECT = 0xA4


@dataclass
class CommitRecorder:
    """Per applet and INS: the largest commit bytes and how many commands were seen."""

    largest: dict[str, dict[str, int]] = field(default_factory=dict)
    commands: dict[str, dict[str, int]] = field(default_factory=dict)

    def record(self, applet: str, ins: int, commit_bytes: int) -> None:
        key = f"{ins:02X}"
        per_applet = self.largest.setdefault(applet, {})
        per_applet[key] = max(per_applet.get(key, 0), commit_bytes)
        counts = self.commands.setdefault(applet, {})
        counts[key] = counts.get(key, 0) + 1


def _selected_aid(command: bytes, response: bytes) -> bytes | None:
    """The AID a successful SELECT by name on the basic channel names (ISO 7816-4 11.2.2), else None."""
    if len(command) < 5 or command[1] != _INS_SELECT or command[2] != 0x04 or command[0] & 0x43:
        return None
    if response[-2:-1] not in (b"\x90", b"\x61", b"\x62"):
        return None
    return command[5:5 + command[4]]


# ---- the pytest plugin of the bench's child pytest (given to pytest.main there: see _CHILD)

class CommitRecordPlugin:
    """Wraps SimulatorTransport.transmit_raw for the child process only: the bench's measurement, not a
    cost the transport pays elsewhere."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.recorder = CommitRecorder()
        self.names = _applet_names(Project.locate())

    @pytest.hookimpl(hookwrapper=True)
    def pytest_sessionstart(self, session: pytest.Session) -> Iterator[None]:
        from cardsuite.sim.inprocess import SimulatorTransport

        original = SimulatorTransport.transmit_raw
        recorder, names = self.recorder, self.names
        selected: dict[int, str] = {}

        def transmit_raw(transport: SimulatorTransport, command: bytes) -> bytes:
            response = original(transport, command)
            aid = _selected_aid(command, response)
            name = _applet_named(names, aid) if aid is not None else None
            if name is not None:  # else a DF name the selected applet resolved itself (ISO 7816-4 5.3.1.1)
                selected[id(transport)] = name
            applet = selected.get(id(transport), "none")
            recorder.record(applet, command[1], transport.commit_bytes())
            return response

        SimulatorTransport.transmit_raw = transmit_raw
        yield

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.out.write_text(json.dumps({"largest": self.recorder.largest, "commands": self.recorder.commands}))


def _applet_names(project: Project) -> dict[bytes, str]:
    names = {applet.aid: package.name for package in load_manifest(project.manifest).packages
             for applet in package.applets}
    names[ISD_AID] = "card manager (ISD)"
    return names


def _applet_named(names: dict[bytes, str], aid: bytes) -> str | None:
    """The applet a SELECT by name picks: exact AID, else the first whose AID starts with it (as jCardSim)."""
    if aid in names:
        return names[aid]
    return next((name for full, name in names.items() if aid and full.startswith(aid)), None)


# ---- the bench

# the child: pytest with the recorder, its output file first in argv, pytest's arguments after it
_CHILD = ("import sys; from pathlib import Path; import pytest; from cardsuite.bench.commit import CommitRecordPlugin; "
          "sys.exit(pytest.main(sys.argv[2:], plugins=[CommitRecordPlugin(Path(sys.argv[1]))]))")

def run_commit_bench(project: Project, folders: tuple[str, ...] = TEST_FOLDERS) -> dict:
    """Runs ``folders`` in-process with the recorder; writes build/bench/commit.json and prints a table."""
    project.bench.mkdir(parents=True, exist_ok=True)
    raw = project.bench / "commit-record.json"
    run = subprocess.run([sys.executable, "-c", _CHILD, str(raw), "-q", "-p", "no:cacheprovider", "--card", "sim",
                          *folders], cwd=project.root, check=False, capture_output=True, text=True)
    if not raw.is_file():
        raise RuntimeError(f"the recording pytest run wrote nothing (exit {run.returncode}):\n{run.stdout[-2000:]}")
    record = json.loads(raw.read_text())
    raw.unlink()
    applets = {}
    for applet, per_ins in sorted(record["largest"].items()):
        largest = max(per_ins.values())
        applets[applet] = {
            "largest_transaction_bytes": largest,
            "margin_bytes": DEFAULT_CAPACITY - largest,
            "commands": {ins: {"largest_bytes": size, "seen": record["commands"][applet][ins]}
                         for ins, size in sorted(per_ins.items())},
        }
    report = {
        "what": "per applet and INS, the largest transaction a command of the tests needs in the commit buffer",
        "counting": f"{ENTRY_HEADER}-byte entry (object, offset, length) plus the overwritten bytes per journaled "
                    "write (1 byte/boolean, 2 short/reference, 4 int); every write counted, repeats too; "
                    "non-atomic Util writes take nothing",
        "default_capacity_bytes": DEFAULT_CAPACITY,
        "required_margin_bytes": REQUIRED_MARGIN,
        "tests": list(folders),
        "tests_exit_code": run.returncode,
        "applets": applets,
    }
    (project.bench / "commit.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'applet':22} {'largest B':>9} {'margin B':>9}  worst INS")
    for applet, figures in applets.items():
        worst = max(figures["commands"].items(), key=lambda item: item[1]["largest_bytes"])[0]
        print(f"{applet:22} {figures['largest_transaction_bytes']:>9} {figures['margin_bytes']:>9}  {worst}")
    if run.returncode != 0:
        raise RuntimeError(f"the tests behind the commit figures failed (exit {run.returncode})")
    short = {name: applets[name]["margin_bytes"] for name in REQUIRED_MARGIN
             if name in applets and applets[name]["margin_bytes"] < REQUIRED_MARGIN[name]}
    if short:
        raise RuntimeError(f"commit buffer margin below the stated one: {short}")
    return report
