"""Golden transcripts (issue 13): a session recorded with --record (secrets masked), replayed with
--card replay:FILE on a simulated card, failing at the first response that differs from the recording."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.sim.targets import ReplayTransport
from cardsuite.transport.transcript import TranscriptError, TranscriptRecorder, replay
from support import ECHO_AID

CLI = [sys.executable, "-m", "cardsuite"]
SELECT = "00A40400" + f"{len(ECHO_AID):02X}" + ECHO_AID.hex().upper()
ECHO = "8001000003A1B2C303"
VERIFY = "0020008004" + "31323334"  # the PIN "1234": masked by the rules in every class


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_recorded_session_replays_on_a_simulated_card(tmp_path: Path) -> None:
    transcript = tmp_path / "session.jsonl"
    done = cli("send", "--card", "sim", "--record", str(transcript), SELECT, ECHO)
    assert done.returncode == 0, done.stderr
    entries = _lines(transcript)
    assert entries[0]["cardsuite_transcript"] == 1
    assert entries[2] == {"command": ECHO.lower(), "response": "a1b2c39000"}
    replayed = cli("send", "--card", f"replay:{transcript}", ECHO)  # the card as the session left it
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.startswith("A1B2C3 9000")


def test_the_first_differing_response_fails_the_replay(tmp_path: Path) -> None:
    transcript = tmp_path / "session.jsonl"
    assert cli("send", "--card", "sim", "--record", str(transcript), SELECT, ECHO).returncode == 0
    entries = _lines(transcript)
    entries[2]["response"] = "a1b2c49000"  # as if the real card had answered otherwise
    transcript.write_text("".join(json.dumps(e) + "\n" for e in entries))
    done = cli("send", "--card", f"replay:{transcript}", ECHO)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"Error: {transcript}:3: 80 01 00 00 answered A1B2C3 9000 (success), "
                                   "recorded A1B2C4 9000 (success)")


def test_secrets_are_never_recorded_and_a_masked_command_needs_its_data(tmp_path: Path) -> None:
    transcript = tmp_path / "session.jsonl"
    done = cli("send", "--card", "sim", "--record", str(transcript), SELECT, VERIFY)
    assert "31323334" not in transcript.read_text()
    hidden = _lines(transcript)[2]["command"]
    assert hidden == {"header": "00200080", "lc": 4, "le": None, "hidden": "VERIFY reference data"}
    with SimulatorTransport() as card, pytest.raises(TranscriptError, match=r"session.jsonl:3: 00 20 00 80 "
                                                                            r"was recorded masked"):
        replay(transcript, card)
    with SimulatorTransport() as card:  # the test's own value, given back: the same answer as recorded
        assert replay(transcript, card, fill=lambda command: bytes.fromhex(VERIFY[10:])) == 2
    assert done.returncode in (0, 2)  # the echo applet's answer to VERIFY is whatever it is: recorded, replayed


def test_resets_are_recorded_and_replayed(tmp_path: Path) -> None:
    transcript = tmp_path / "session.jsonl"
    with SimulatorTransport() as card:
        card.trace = TranscriptRecorder(transcript, card="sim")
        card.select(ECHO_AID)
        card.reset()
        assert card.exchange(CommandAPDU(0x80, 0x01, 0, 0, b"\x01", le=1)).sw != 0x9000  # deselected by the reset
        card.trace.close()
    assert {"reset": True} in _lines(transcript)
    replayed = ReplayTransport(transcript)
    replayed.connect()
    assert replayed.replayed == 2
    replayed.disconnect()


def test_the_plugin_runs_tests_on_a_replayed_card(pytester: pytest.Pytester, tmp_path: Path) -> None:
    transcript = tmp_path / "session.jsonl"
    assert cli("send", "--card", "sim", "--record", str(transcript), SELECT, ECHO).returncode == 0
    pytester.makepyfile("""
        from cardsuite.apdu import CommandAPDU
        def test_echo_after_the_session(card):
            assert card.transmit(CommandAPDU(0x80, 0x01, 0, 0, b"\\x07", le=1)).data == b"\\x07"
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--card", f"replay:{transcript}")
    result.assert_outcomes(passed=1)
    entries = _lines(transcript)
    entries[1]["response"] = "6a82"  # the SELECT failed on the card recorded
    transcript.write_text("".join(json.dumps(e) + "\n" for e in entries))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--card", f"replay:{transcript}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*session.jsonl:2: 00 A4 04 00 answered*recorded*6A82*"])
