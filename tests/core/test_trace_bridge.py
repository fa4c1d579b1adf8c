"""The simulator bridge masks its trace with the host's rules and logs 0600 (issue 9, item 2)."""

from __future__ import annotations

import stat
import time

import pytest
from cardsuite.apdu import CommandAPDU, ResponseAPDU
from cardsuite.masking import RULES_FILE
from cardsuite.project import Project
from cardsuite.sim.bridge import start_jvm
from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots
from cardsuite.trace import Trace
from cardsuite.wallet.card import WALLET_AID, pin_block

PIN = "8642"
SECRET = bytes.fromhex("5EC2E75EC2E75EC2E75EC2E75EC2E75E")

# (command, response): each class of rule, a GET RESPONSE after a hidden 61xx, case 1 to 4, plain commands
EXCHANGES = [
    (CommandAPDU(0x00, 0xA4, 0x04, 0x00, WALLET_AID, le=256), ResponseAPDU(b"", 0x9000)),
    (CommandAPDU(0x00, 0x20, 0x00, 0x81, pin_block(PIN)), ResponseAPDU(b"", 0x63C2)),
    (CommandAPDU(0x10, 0x24, 0x00, 0x81, SECRET), ResponseAPDU(b"", 0x9000)),
    (CommandAPDU(0x80, 0x50, 0x00, 0x00, SECRET[:8], le=256), ResponseAPDU(b"", 0x6111)),
    (CommandAPDU(0x00, 0xC0, 0x00, 0x00, le=0x11), ResponseAPDU(SECRET + b"\x01", 0x9000)),
    (CommandAPDU(0x00, 0xC0, 0x00, 0x00, le=2), ResponseAPDU(b"\x01\x02", 0x9000)),
    (CommandAPDU(0x84, 0xE6, 0x0C, 0x00, SECRET), ResponseAPDU(b"\x00", 0x9000)),
    (CommandAPDU(0xE3, 0xF2, 0x40, 0x00, SECRET), ResponseAPDU(b"", 0x9000)),
    (CommandAPDU(0x80, 0x30, 0x00, 0x00, SECRET), ResponseAPDU(b"", 0x6982)),
    (CommandAPDU(0x80, 0xD8, 0x01, 0x81, SECRET), ResponseAPDU(b"", 0x9000)),
    (CommandAPDU(0x2F, 0xB0, 0x00, 0x00, SECRET), ResponseAPDU(b"", 0x6E00)),
    (CommandAPDU(0xC1, 0xF2, 0x40, 0x00, b"\x4F\x00", le=256), ResponseAPDU(b"\xE3\x02\x4F\x00", 0x9000)),
    (CommandAPDU(0x00, 0xB0, 0x00, 0x00, le=256), ResponseAPDU(b"\x11\x22", 0x9000)),
    (CommandAPDU(0x00, 0x70, 0x00, 0x00), ResponseAPDU(b"\x01", 0x9000)),
]


def test_the_bridge_reads_the_rules_as_the_host_does(project: Project) -> None:
    start_jvm(project)
    import jpype

    paths = jpype.JClass("java.nio.file.Paths")
    rules = jpype.JClass("cardsuite.simbridge.vpcd.MaskRules").load(paths.get(str(RULES_FILE)))
    trace = Trace()
    for command, response in EXCHANGES:
        shown_command = str(rules.command(jpype.JArray(jpype.JByte)(command.to_bytes())))
        shown_response = str(rules.response(jpype.JArray(jpype.JByte)(response.to_bytes())))
        trace.record(command, response, time.perf_counter())
        entry = trace.entries[-1]
        assert shown_command == entry.command
        assert shown_response == (f"{entry.response} " if entry.response else "") + f"{response.sw:04X}"
    assert SECRET.hex(" ").upper() not in trace.format()


def test_without_rules_the_bridge_hides_all_data(project: Project) -> None:
    start_jvm(project)
    import jpype

    rules = jpype.JClass("cardsuite.simbridge.vpcd.MaskRules").hideAll()
    command = CommandAPDU(0x00, 0xB0, 0x00, 0x00, SECRET, le=16)
    assert str(rules.command(jpype.JArray(jpype.JByte)(command.to_bytes()))) == \
        "00 B0 00 00 10 [16 bytes masked: no mask rules given] Le=16"
    assert str(rules.response(jpype.JArray(jpype.JByte)(SECRET + b"\x90\x00"))) == \
        "[16 bytes masked: no mask rules given] 9000"


@pytest.mark.e2e
def test_a_traced_vpcd_card_logs_a_verify_masked_in_a_0600_file(project: Project) -> None:
    ensure_pcscd()
    slots = free_slots()
    if not slots:
        pytest.skip("every vpcd slot already holds a card")
    simulator = VpcdSimulator(project, slot=slots[0], trace=True)
    simulator.log_path.parent.mkdir(parents=True, exist_ok=True)
    simulator.log_path.write_text("an older bridge's log\n")
    simulator.log_path.chmod(0o644)  # left wide by an older version: narrowed before anything is written
    with simulator:
        with simulator.transport() as transport:
            transport.select(WALLET_AID)
            verify = transport.transmit(CommandAPDU(0x00, 0x20, 0x00, 0x81, pin_block(PIN)))
            perso = transport.transmit(CommandAPDU(0x80, 0x30, 0x00, 0x00, SECRET))
        mode = stat.S_IMODE(simulator.log_path.stat().st_mode)
    log = simulator.log_path.read_text()
    assert mode == 0o600, oct(mode)
    assert stat.S_IMODE(simulator.log_path.stat().st_mode) == 0o600
    for secret in (pin_block(PIN), PIN.encode(), SECRET):
        assert secret.hex().upper() not in log.replace(" ", "").upper()
    assert "> 00 20 00 81 08 [8 bytes masked: VERIFY reference data]\n" in log
    assert f"< {verify.sw:04X}" in log and f"< {perso.sw:04X}" in log
    assert "> 80 30 00 00 10 [16 bytes masked: wallet PERSONALISE (keys, PIN, PUK)]" in log
    assert "an older bridge's log" not in log
