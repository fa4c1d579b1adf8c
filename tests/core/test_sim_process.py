"""`cardsuite sim` as the separate process users run: its bridge JVM never outlives it."""

import os
import signal
import subprocess
import sys
import time

import pytest
from cardsuite.sim.vpcd import ensure_pcscd, slot_has_card

CLI = [sys.executable, "-m", "cardsuite"]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_sigkill_of_cardsuite_sim_ends_its_bridge_and_frees_the_slot() -> None:
    ensure_pcscd()
    if slot_has_card(0):
        pytest.skip("vpcd slot 0 already holds a card")
    sim = subprocess.Popen([*CLI, "sim"], stdout=subprocess.PIPE, text=True)
    bridges: list[int] = []
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline()
        assert "simulated card ready" in line, line
        bridges += _children(sim.pid)
        assert len(bridges) == 1 and slot_has_card(0)
        sim.send_signal(signal.SIGKILL)  # no handler, no finally: only the pipe tells the bridge
        sim.wait()
        assert _wait_until(lambda: not _alive(bridges[0]), 3.0), "the bridge outlived `cardsuite sim`"
        assert _wait_until(lambda: not slot_has_card(0), 3.0), "vpcd slot 0 still holds the card"
    finally:
        if sim.poll() is None:
            sim.kill()
        sim.wait()
        for pid in bridges:
            if _alive(pid):  # the failure being tested: do not leave the orphan holding the slot
                os.killpg(pid, signal.SIGKILL)
