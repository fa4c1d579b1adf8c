"""Command/response APDU codec and status words."""

import pytest
from cardsuite.apdu import CommandAPDU, ResponseAPDU, StatusError, sw_meaning, verification_tries_left
from cardsuite.cla import LOGICAL_CHANNELS, channel_cla, cla_channel, is_secure_messaging, secure_messaging_cla


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00A40000", CommandAPDU(0x00, 0xA4, 0, 0)),
        ("00B0000010", CommandAPDU(0x00, 0xB0, 0, 0, le=16)),
        ("00B0000000", CommandAPDU(0x00, 0xB0, 0, 0, le=256)),
        ("00D6000003AABBCC", CommandAPDU(0x00, 0xD6, 0, 0, bytes.fromhex("AABBCC"))),
        ("8001000002010200", CommandAPDU(0x80, 0x01, 0, 0, b"\x01\x02", le=256)),
        # extended (ISO 7816-3 12.1.3): 2E, 3E, 4E; Le 0000 is 65536
        ("00B00000000101", CommandAPDU(0x00, 0xB0, 0, 0, le=257)),
        ("00B00000000000", CommandAPDU(0x00, 0xB0, 0, 0, le=65536)),
        ("00D6000000000201020000", CommandAPDU(0x00, 0xD6, 0, 0, b"\x01\x02", le=65536)),
    ],
)
def test_cases_1_to_4_round_trip(raw: str, expected: CommandAPDU) -> None:
    parsed = CommandAPDU.from_hex(raw)
    assert parsed == expected
    assert parsed.to_bytes() == bytes.fromhex(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("00A4", "at least 4 header bytes"),
        ("00D6000005AABB", "Lc=5 does not match the 2 bytes"),
        ("00D600000001", "neither a short nor an extended length"),
        ("00D60000000000AA", "Lc 0000"),
        ("00D60000000002AA", "extended Lc=2 does not match the 1 bytes"),
        ("zz", "APDU is not hex"),
    ],
)
def test_malformed_apdus_are_rejected_with_the_reason(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CommandAPDU.from_hex(raw)


def test_field_ranges_are_checked() -> None:
    with pytest.raises(ValueError, match="p1 must be a byte"):
        CommandAPDU(0, 0xA4, 256, 0)
    with pytest.raises(ValueError, match="at most 65535"):
        CommandAPDU(0, 0xD6, 0, 0, bytes(65536))
    with pytest.raises(ValueError, match="Le must be 1..65536"):
        CommandAPDU(0, 0xB0, le=0)


def test_long_data_or_le_is_encoded_extended() -> None:
    """Nc > 255 or Ne > 256 need the extended form, with the 00 marker once and both lengths in 2 bytes."""
    big = CommandAPDU(0x80, 0x10, 0, 0, bytes(300), le=256)
    assert big.extended
    assert big.to_bytes() == bytes.fromhex("80100000" "00012C") + bytes(300) + bytes.fromhex("0100")
    assert CommandAPDU.from_bytes(big.to_bytes()) == big
    assert not CommandAPDU(0x80, 0x10, 0, 0, bytes(255), le=256).extended
    # a short command sent in the extended form parses to the same command (and is sent short)
    assert CommandAPDU.from_hex("00D60000000001AA") == CommandAPDU(0x00, 0xD6, 0, 0, b"\xAA")


def test_status_words_have_their_iso_meaning() -> None:
    assert sw_meaning(0x6A82) == "file or application not found"
    assert sw_meaning(0x6C20) == "wrong Le: exact length is 32"
    assert sw_meaning(0x6110) == "16 more response bytes available"
    assert sw_meaning(0x63C2) == "verification failed, 2 tries left"


def test_status_error_carries_status_word_command_and_meaning() -> None:
    command = CommandAPDU(0x00, 0xB2, 1, 0x0C, le=256)
    with pytest.raises(StatusError) as caught:
        ResponseAPDU.from_bytes(bytes.fromhex("6A83")).check(command)
    error = caught.value
    assert error.sw == 0x6A83
    assert error.command == command
    assert error.meaning == "record not found"
    assert "6A83 (record not found) to 00 B2 01 0C; expected 9000" in str(error)


@pytest.mark.parametrize(("channel", "interindustry", "proprietary"), [
    (0, 0x00, 0x80), (1, 0x01, 0x81), (3, 0x03, 0x83),  # first class: b2 b1 (ISO 7816-4 5.4.1)
    (4, 0x40, 0xC0), (5, 0x41, 0xC1), (19, 0x4F, 0xCF),  # further class: channel - 4 in b4..b1 (GPCS 11.1.4)
])
def test_the_cla_of_a_logical_channel(channel: int, interindustry: int, proprietary: int) -> None:
    assert channel_cla(channel) == interindustry
    assert channel_cla(channel, proprietary=True) == proprietary


def test_every_channel_round_trips_and_secure_messaging_or_chaining_keep_the_channel() -> None:
    for channel in range(LOGICAL_CHANNELS):
        for proprietary in (False, True):
            cla = channel_cla(channel, proprietary)
            assert cla_channel(cla) == channel
            flags = (0x04, 0x08, 0x0C, 0x10) if channel < 4 else (0x20, 0x10, 0x30)  # SM b4 b3 / b6, chaining b5
            # but FF, which would be channel 19 proprietary with both, is the invalid CLA
            assert all(cla_channel(cla | flag) == channel for flag in flags if cla | flag != 0xFF)


def test_secure_messaging_is_set_in_the_bit_of_the_channels_class() -> None:
    """GlobalPlatform's wrapped command on each channel ([GPCS] 11.1.4): 80-83 -> 84-87, C0-CF -> E0-EF (b6: b3 is a
    channel bit there, C0 | 04 would address channel 8, not channel 4 under secure messaging)."""
    for channel in range(LOGICAL_CHANNELS):
        for proprietary in (False, True):
            plain = channel_cla(channel, proprietary)
            wrapped = secure_messaging_cla(plain)
            assert wrapped == plain | (0x04 if channel < 4 else 0x20), (channel, proprietary)
            assert cla_channel(wrapped) == channel and is_secure_messaging(wrapped) and not is_secure_messaging(plain)
    assert secure_messaging_cla(0xC0) == 0xE0 and secure_messaging_cla(0x80) == 0x84


@pytest.mark.parametrize("channel", [-1, 20, True, "1"])
def test_a_channel_outside_0_to_19_has_no_cla(channel) -> None:
    with pytest.raises(ValueError, match="logical channel is 0..19"):
        channel_cla(channel)


def test_cla_ff_addresses_no_channel() -> None:
    with pytest.raises(ValueError, match="CLA FF is invalid"):
        cla_channel(0xFF)


@pytest.mark.parametrize(("sw", "left"), [(0x63C2, 2), (0x63C0, 0), (0x6983, 0), (0x6300, None), (0x9000, None),
                                          (0x6A80, None)])
def test_a_refused_verification_tells_the_tries_it_leaves(sw: int, left: int | None) -> None:
    assert verification_tries_left(sw) == left
