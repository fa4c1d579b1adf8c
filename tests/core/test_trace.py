"""APDU traces never hold reference data (PINs), keys or secure-messaging data in clear."""

import time

import pytest
from cardsuite.apdu import CommandAPDU, ResponseAPDU
from cardsuite.cla import is_secure_messaging
from cardsuite.ecash.card import INS_ECASH_PERSONALISE
from cardsuite.errors import ConfigurationError
from cardsuite.gp.client import INS_PUT_KEY
from cardsuite.masking import RULES_FILE, MaskRules, default_rules
from cardsuite.trace import Trace
from cardsuite.wallet.card import (
    INS_CHANGE_REFERENCE_DATA,
    INS_CREDIT,
    INS_EXTERNAL_AUTHENTICATE,
    INS_INITIALIZE_UPDATE,
    INS_PERSONALISE,
    INS_RESET_RETRY_COUNTER,
    INS_SET_LIMITS,
    INS_SET_STATUS,
    INS_VERIFY,
)

SECRET = bytes.fromhex("5EC2E75EC2E75EC2E75EC2E75EC2E75E")


def _shown(*exchanges: tuple[CommandAPDU, ResponseAPDU], trace: Trace | None = None) -> str:
    trace = trace or Trace()
    for command, response in exchanges:
        trace.record(command, response, time.perf_counter())
    return trace.format()


def test_verify_pin_is_masked_and_other_commands_are_shown() -> None:
    pin = b"123456"
    text = _shown((CommandAPDU(0x00, 0x20, 0x00, 0x81, pin), ResponseAPDU(b"", 0x63C2)),
                  (CommandAPDU(0x00, 0xB0, 0, 0, le=4), ResponseAPDU(b"\x01\x02\x03\x04", 0x9000)))
    assert pin.hex().upper() not in text.replace(" ", "")
    assert "[6 bytes masked: VERIFY reference data]" in text
    assert "63C2 (verification failed, 2 tries left)" in text
    assert "01 02 03 04" in text


@pytest.mark.parametrize("cla", [0x00, 0x01, 0x03, 0x04, 0x08, 0x0C, 0x0F, 0x10, 0x13, 0x1C, 0x40, 0x4F, 0x50,
                                 0x60, 0x7F, 0x80, 0x81, 0x84, 0x8C, 0x90, 0xA0, 0xC0, 0xCF, 0xE0, 0xEF, 0xFE])
@pytest.mark.parametrize("ins", [INS_VERIFY, INS_CHANGE_REFERENCE_DATA, INS_RESET_RETRY_COUNTER])
def test_reference_data_is_masked_in_every_class(cla: int, ins: int) -> None:
    text = _shown((CommandAPDU(cla, ins, 0x00, 0x81, SECRET), ResponseAPDU(b"", 0x9000)))
    assert SECRET.hex().upper() not in text.replace(" ", "") and "[16 bytes masked: " in text


@pytest.mark.parametrize("cla", [0x84, 0x85, 0x87, 0x88, 0x8C, 0x8F, 0x94, 0x9C, 0x04, 0x0C, 0x60, 0x7F,
                                 0xE0, 0xE4, 0xEF, 0xF0, 0xFE])
def test_everything_sent_under_secure_messaging_is_masked(cla: int) -> None:
    assert is_secure_messaging(cla)
    for ins in (0xE6, 0xE8, 0xF2, 0xCA, 0x42):  # INSTALL, LOAD, GET STATUS, GET DATA, anything
        text = _shown((CommandAPDU(cla, ins, 0, 0, SECRET), ResponseAPDU(b"", 0x9000)))
        assert SECRET.hex(" ").upper() not in text and "[16 bytes masked: secure messaging]" in text


@pytest.mark.parametrize("cla", [0x00, 0x01, 0x80, 0x83, 0xC0, 0xCF])
def test_plain_commands_stay_readable(cla: int) -> None:
    assert not is_secure_messaging(cla)
    text = _shown((CommandAPDU(cla, 0xF2, 0x40, 0x00, b"\x4F\x00"), ResponseAPDU(b"\x61\x00", 0x9000)))
    assert "02 4F 00" in text and "<< 61 00 9000" in text


@pytest.mark.parametrize("ins", [INS_PERSONALISE, INS_SET_LIMITS, INS_CREDIT, INS_SET_STATUS, INS_ECASH_PERSONALISE,
                                 INS_PUT_KEY, 0xE2, INS_EXTERNAL_AUTHENTICATE])
@pytest.mark.parametrize("cla", [0x80, 0x84])
def test_issuer_commands_are_masked_whatever_application_is_selected(cla: int, ins: int) -> None:
    """What a command is decides, not the AID: a wallet may be installed under any instance AID."""
    select = (CommandAPDU(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("F0636172641099")), ResponseAPDU(b"", 0x9000))
    command = (CommandAPDU(cla, ins, 0x04, 0x00, SECRET), ResponseAPDU(b"", 0x9000))
    text = _shown(command, select, command)
    assert SECRET.hex(" ").upper() not in text and text.count("[16 bytes masked: ") == 2


def test_initialize_update_hides_both_challenges_and_the_cryptogram_even_through_get_response() -> None:
    host_challenge, answer = SECRET[:8], bytes(range(0x20, 0x20 + 28))
    initialize = CommandAPDU(0x80, INS_INITIALIZE_UPDATE, 0x30, 0x00, host_challenge, le=256)
    text = _shown((initialize, ResponseAPDU(b"", 0x611C)),
                  (CommandAPDU(0x00, 0xC0, 0, 0, le=0x1C), ResponseAPDU(answer, 0x9000)),
                  (CommandAPDU(0x00, 0xC0, 0, 0, le=3), ResponseAPDU(b"\x01\x02\x03", 0x9000)))
    assert ">> 80 50 30 00 08 [8 bytes masked: INITIALIZE UPDATE challenge and cryptogram] Le=256" in text
    assert answer[:4].hex(" ").upper() not in text and "<< [28 bytes masked: INITIALIZE UPDATE" in text
    assert "<< 01 02 03 9000" in text  # a GET RESPONSE that follows no hidden response is shown


def test_rules_given_as_data_mask_responses_too() -> None:
    rules = MaskRules.parse("proprietary CA,CB response test secret\n")
    trace = Trace(rules=rules)
    text = _shown((CommandAPDU(0x90, 0xCA, 0, 0, le=8), ResponseAPDU(b"\xAA" * 8, 0x9000)),
                  (CommandAPDU(0x00, 0xCA, 0, 0, le=8), ResponseAPDU(b"\xBB" * 8, 0x9000)), trace=trace)
    assert trace.entries[0].response == "[8 bytes masked: test secret]"
    assert "BB BB" in text


@pytest.mark.parametrize(("text", "message"), [
    ("any 20", "a rule is CLASSES INS HIDE REASON"),
    ("everywhere 20 data x", "classes 'everywhere'"),
    ("any 2G data x", "INS '2G'"),
    ("any 120 data x", "each is one byte"),
    ("any 20 nothing x", "hide 'nothing'"),
])
def test_a_malformed_rule_names_its_line(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        MaskRules.parse(f"# comment\n{text}\n", "rules.txt")
    assert str(raised.value).startswith("rules.txt:2: ")


def test_the_shipped_rules_parse() -> None:
    assert RULES_FILE.is_file() and len(default_rules().rules) >= 8


def test_trace_keeps_only_the_last_entries() -> None:
    trace = Trace(limit=3)
    for p1 in range(5):
        trace.record(CommandAPDU(0x00, 0xB0, p1, 0, le=1), ResponseAPDU(b"\x00", 0x9000), time.perf_counter())
    assert [entry.command.split()[2] for entry in trace.entries] == ["02", "03", "04"]
