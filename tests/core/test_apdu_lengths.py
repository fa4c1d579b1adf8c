"""Every APDU length a short-APDU card takes works, every malformed one is 6700, on every transport: the
bridge checks the length fields (ISO 7816-3 12.1.3) before jCardSim parses them, and gives applets a full
261-byte short APDU buffer."""

import os

import pytest
from cardsuite.apdu import CommandAPDU

pytestmark = pytest.mark.e2e

SW_WRONG_LENGTH = 0x6700
ECHO = bytes.fromhex("80010000")
SELECT_BY_NAME = bytes.fromhex("00A40400")

MALFORMED = {
    "Lc 00 then one byte": ECHO + bytes.fromhex("0005"),
    "Lc 5, 2 data bytes": ECHO + bytes.fromhex("050102"),
    "Lc 2, 4 bytes after it": ECHO + bytes.fromhex("0201020304"),
    "Lc 255, 254 data bytes": ECHO + b"\xff" + bytes(254),
    "Lc 1, 255 data bytes": ECHO + b"\x01" + bytes(255),
    "extended Lc 0000": ECHO + bytes.fromhex("00000001"),
    "extended Lc 5, 1 data byte": ECHO + bytes.fromhex("00000501"),
    "extended Lc 2, 3 bytes after it": ECHO + bytes.fromhex("000002010203"),
    "SELECT, 17-byte name": SELECT_BY_NAME + b"\x11" + bytes(17),
    "SELECT, 128-byte name": SELECT_BY_NAME + b"\x80" + bytes(128),
    "SELECT, 255-byte name and Le": SELECT_BY_NAME + b"\xff" + bytes(255) + b"\x00",
}


def _echo_works(card) -> bool:
    payload = os.urandom(16)
    response = card.transmit(CommandAPDU(0x80, 0x01, 0, 0, payload, le=256))
    return (response.data, response.sw) == (payload, 0x9000)


@pytest.mark.parametrize("command", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_apdu_is_wrong_length_and_changes_nothing(echo, command: bytes) -> None:
    assert echo.transmit_raw(command) == SW_WRONG_LENGTH.to_bytes(2, "big")
    assert _echo_works(echo)  # still selected, still answering: the command never reached an applet


@pytest.mark.parametrize("le", [None, 256], ids=["no Le", "Le"])
def test_echo_takes_every_short_data_length(echo, le: int | None) -> None:
    for nc in range(256):
        payload = os.urandom(nc)
        response = echo.transmit(CommandAPDU(0x80, 0x01, 0, 0, payload, le=le))
        assert (response.sw, response.data) == (0x9000, payload), f"Nc {nc}"


def test_a_261_byte_case_4_command_reaches_the_applet(echo) -> None:
    command = CommandAPDU(0x80, 0x01, 0, 0, bytes(range(255)), le=256)
    assert len(command.to_bytes()) == 261
    assert echo.transmit_raw(command.to_bytes()) == bytes(range(255)) + b"\x90\x00"
