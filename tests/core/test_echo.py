"""The first applet end to end: build → simulator → host transport, over `sim` and `vpcd`."""

import os

import pytest
from cardsuite.apdu import CommandAPDU, ResponseAPDU, StatusError
from cardsuite.cla import channel_cla
from support import ABSENT_AID, ECHO_AID

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("size", [1, 32, 250])
def test_echo_returns_the_command_data(echo, size: int) -> None:
    payload = os.urandom(size)
    assert echo.send(CommandAPDU(0x80, 0x01, 0, 0, payload, le=256)).data == payload


def test_wrong_le_is_corrected_like_a_pcsc_application_does(echo) -> None:
    command = CommandAPDU(0x80, 0x03, 0, 0, le=5)
    assert echo.exchange(command).sw == 0x6C20  # what the card really says
    response = echo.transmit(command)  # re-sent with Le=32
    assert response.sw == 0x9000
    assert response.data == bytes(range(32))


def test_61xx_responses_are_collected_with_get_response(echo) -> None:
    first = echo.exchange(CommandAPDU(0x80, 0x04, 40, 0))
    assert (first.data, first.sw) == (bytes(range(16)), 0x6118)
    response = echo.transmit(CommandAPDU(0x80, 0x04, 40, 0))
    assert response.sw == 0x9000
    assert response.data == bytes(range(40))


def test_unknown_instruction_and_class_get_their_status_words(echo) -> None:
    with pytest.raises(StatusError) as caught:
        echo.send(CommandAPDU(0x80, 0x7F, 0, 0))
    assert caught.value.sw == 0x6D00
    assert echo.transmit(CommandAPDU(0x90, 0x01, 0, 0, b"\x00")).sw == 0x6E00


def test_selecting_an_absent_applet_is_file_not_found(card) -> None:
    assert card.transmit(CommandAPDU(0x00, 0xA4, 0x04, 0x00, ABSENT_AID)).sw == 0x6A82


@pytest.mark.isolated
def test_reset_deselects_the_applet(card) -> None:
    card.select(ECHO_AID)
    atr = card.reset()
    assert atr
    assert card.transmit(CommandAPDU(0x80, 0x01, 0, 0, b"\x01", le=1)).sw != 0x9000


MANAGE_CHANNEL = 0x70  # ISO 7816-4 11.1.2: P1 00 opens the channel P2 names, P1 80 closes it


@pytest.mark.isolated  # a fresh card: the echo applet selected on no other channel (it is not MultiSelectable)
@pytest.mark.parametrize("channel", [1, 3, 4, 5, 19])
def test_61xx_on_a_logical_channel_is_collected_on_that_channel(card, channel: int) -> None:
    """GET RESPONSE goes to the channel the command went to (ISO 7816-4 5.4.1: CLA 4X for 4-19). The old
    CLA & 03 sent it to channel n mod 4: the basic channel for 4, closed channels for 5 and 19."""
    assert card.transmit(CommandAPDU(0x00, MANAGE_CHANNEL, 0x00, channel)).sw == 0x9000
    assert card.transmit(CommandAPDU(channel_cla(channel), 0xA4, 0x04, 0x00, ECHO_AID, le=256)).sw == 0x9000
    segmented = CommandAPDU(channel_cla(channel, proprietary=True), 0x04, 40, 0)
    first = card.exchange(segmented)
    assert (first.data, first.sw) == (bytes(range(16)), 0x6118)  # the applet on that channel answered
    whole = ResponseAPDU(bytes(range(40)), 0x9000)
    assert card.transmit(segmented) == whole
    assert card.transmit_many([segmented, segmented]) == [whole, whole]
    assert card.transmit(CommandAPDU(0x00, MANAGE_CHANNEL, 0x80, channel)).sw == 0x9000


@pytest.mark.isolated
def test_the_echo_applet_takes_its_class_on_any_channel_but_not_with_secure_messaging(card) -> None:
    assert card.transmit(CommandAPDU(0x00, MANAGE_CHANNEL, 0x00, 9)).sw == 0x9000
    assert card.transmit(CommandAPDU(channel_cla(9), 0xA4, 0x04, 0x00, ECHO_AID, le=256)).sw == 0x9000
    assert card.send(CommandAPDU(channel_cla(9, proprietary=True), 0x01, 0, 0, b"\x2a", le=1)).data == b"\x2a"
    secured = channel_cla(9, proprietary=True) | 0x20  # b6: secure messaging in the further class
    assert card.transmit(CommandAPDU(secured, 0x01, 0, 0, b"\x2a", le=1)).sw == 0x6E00
