"""APDU traces never hold reference data (PINs) in clear."""

import time

from cardsuite.apdu import CommandAPDU, ResponseAPDU
from cardsuite.trace import MaskRule, Trace, register_mask_rule


def test_verify_pin_is_masked_and_other_commands_are_shown() -> None:
    trace = Trace()
    pin = b"123456"
    trace.record(CommandAPDU(0x00, 0x20, 0x00, 0x81, pin), ResponseAPDU(b"", 0x63C2), time.perf_counter())
    trace.record(CommandAPDU(0x00, 0xB0, 0, 0, le=4), ResponseAPDU(b"\x01\x02\x03\x04", 0x9000), time.perf_counter())
    text = trace.format()
    assert pin.hex().upper() not in text.replace(" ", "")
    assert "[6 bytes masked: VERIFY reference data]" in text
    assert "63C2 (verification failed, 2 tries left)" in text
    assert "01 02 03 04" in text


def test_registered_rules_mask_responses_too() -> None:
    register_mask_rule(MaskRule(0xCA, cla_class=0x90, mask_response=True, reason="test secret"))
    trace = Trace()
    trace.record(CommandAPDU(0x90, 0xCA, 0, 0, le=8), ResponseAPDU(b"\xAA" * 8, 0x9000), time.perf_counter())
    assert "AA" not in trace.entries[0].response
    assert trace.entries[0].response == "[8 bytes masked: test secret]"


def test_trace_keeps_only_the_last_entries() -> None:
    trace = Trace(limit=3)
    for p1 in range(5):
        trace.record(CommandAPDU(0x00, 0xB0, p1, 0, le=1), ResponseAPDU(b"\x00", 0x9000), time.perf_counter())
    assert [entry.command.split()[2] for entry in trace.entries] == ["02", "03", "04"]


def test_application_rules_apply_while_that_application_is_selected() -> None:
    wallet, other = bytes.fromhex("F0636172641001"), bytes.fromhex("A000000151000000")
    register_mask_rule(MaskRule(0xF0, cla_class=0x80, reason="wallet status", aid=wallet))
    command = CommandAPDU(0x84, 0xF0, 0x08, 0, b"\x11" * 16)
    trace = Trace()
    trace.record(command, ResponseAPDU(b"", 0x9000), time.perf_counter())  # nothing selected seen yet
    trace.record(CommandAPDU(0x00, 0xA4, 0x04, 0, other), ResponseAPDU(b"", 0x9000), time.perf_counter())
    trace.record(command, ResponseAPDU(b"", 0x9000), time.perf_counter())
    trace.record(CommandAPDU(0x00, 0xA4, 0x04, 0, wallet), ResponseAPDU(b"", 0x9000), time.perf_counter())
    trace.record(command, ResponseAPDU(b"", 0x9000), time.perf_counter())
    shown = [trace.entries[i].command for i in (0, 2, 4)]
    assert "masked" in shown[0]  # unknown application: masked, the safe side
    assert "11 11 11" in shown[1]  # another application's 80 F0 is not the wallet's secret
    assert "masked" in shown[2]
