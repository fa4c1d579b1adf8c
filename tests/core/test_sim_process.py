"""`cardsuite sim` as the separate process users run: its bridge JVM never outlives it; a bridge started on a
slot another card took meanwhile says so instead of passing that card off as its own."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.errors import TransportError
from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots, slot_has_card
from support import ECHO_AID

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


def test_of_two_simulators_started_at_once_on_one_slot_one_attaches_and_the_other_says_the_slot_is_taken(
        project) -> None:
    """Both see the slot free, both bridges connect to vpcd's port; vpcd talks to one, the other's connection
    only waits in its queue. Before, both starts returned and the second's transport reached the first's card."""
    ensure_pcscd()
    slots = free_slots()
    if not slots:
        pytest.skip("every vpcd slot already holds a card")
    simulators = [VpcdSimulator(project, slot=slots[0]), VpcdSimulator(project, slot=slots[0], applets=[])]
    outcomes: dict[int, BaseException | None] = {}
    both = threading.Barrier(2)

    def start(index: int) -> None:
        both.wait()
        try:
            simulators[index].start()
            outcomes[index] = None
        except BaseException as exc:  # noqa: BLE001 - the outcome is what the test looks at
            outcomes[index] = exc

    starters = [threading.Thread(target=start, args=(index,)) for index in range(2)]
    try:
        for starter in starters:
            starter.start()
        for starter in starters:
            starter.join(timeout=60)
        started = [index for index, outcome in outcomes.items() if outcome is None]
        assert len(started) == 1, outcomes
        refused = outcomes[1 - started[0]]
        assert isinstance(refused, TransportError) and "already holds a card" in str(refused), refused
        assert simulators[1 - started[0]].process is None  # its bridge is gone
        with simulators[started[0]].transport() as card:  # the card behind the slot is the one that started
            echo_selected = card.transmit(CommandAPDU(0x00, 0xA4, 0x04, 0x00, ECHO_AID, le=256)).sw == 0x9000
            assert echo_selected == (started == [0])  # only the first has the echo applet
    finally:
        for simulator in simulators:
            simulator.stop()
