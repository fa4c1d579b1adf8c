"""The in-process fast path (issue 13, host overhead): the shortcuts taken on every APDU keep every check
and every record of the slow path they replace."""

from __future__ import annotations

import dataclasses
import os

import pytest
from cardsuite.apdu import CommandAPDU, ResponseAPDU
from cardsuite.bench.transport import run_inprocess_ratio
from cardsuite.errors import TransportError
from cardsuite.sim.bridge import AppletInstall
from cardsuite.sim.inprocess import SHARED_BUFFER, SimulatorTransport
from cardsuite.trace import Trace
from cardsuite.transport.base import _SECURING_CLA, _SECURING_INS, _secures


def test_the_security_tables_say_what_secures_says_for_every_cla_and_ins() -> None:
    for cla in range(256):
        for ins in range(256):
            command = bytes((cla, ins, 0, 0))
            assert bool(_SECURING_CLA[cla] or _SECURING_INS[ins]) == _secures(command), command.hex()


@pytest.mark.parametrize("le", [None, 1, 32, 256])
@pytest.mark.parametrize("size", [0, 1, 200, 255])
def test_to_bytes_is_the_iso_encoding_and_parses_back(size: int, le: int | None) -> None:
    command = CommandAPDU(0x80, 0x01, 0x02, 0x03, os.urandom(size), le=le)
    raw = command.to_bytes()
    expected = bytes((0x80, 0x01, 0x02, 0x03)) + (bytes((size,)) + command.data if size else b"")
    expected += bytes((le & 0xFF,)) if le is not None else b""
    assert raw == expected
    assert CommandAPDU.from_bytes(raw) == command


def test_a_command_is_encoded_once_and_stays_equal_to_one_never_encoded() -> None:
    command = CommandAPDU(0x00, 0x20, 0x00, 0x81, b"\x31\x32\x33\x34", le=None)
    fresh = CommandAPDU(0x00, 0x20, 0x00, 0x81, b"\x31\x32\x33\x34")
    raw = command.to_bytes()
    assert command.to_bytes() is raw  # the cached encoding, not a new one
    assert command == fresh and hash(command) == hash(fresh) and repr(command) == repr(fresh)
    assert "3132" not in repr(command)  # VERIFY data stays masked in the repr
    assert command.with_le(4).to_bytes() == raw + b"\x04"
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.data = b""  # type: ignore[misc]


def test_a_response_made_from_bytes_is_the_frozen_dataclass_the_constructor_makes() -> None:
    parsed, built = ResponseAPDU.from_bytes(b"\x01\x02\x61\x10"), ResponseAPDU(b"\x01\x02", 0x6110)
    assert parsed == built and hash(parsed) == hash(built) and repr(parsed) == repr(built)
    assert (parsed.sw1, parsed.sw2, parsed.to_bytes()) == (0x61, 0x10, b"\x01\x02\x61\x10")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.sw = 0x9000  # type: ignore[misc]

    class Tagged(ResponseAPDU):  # a subclass still goes through its own constructor
        pass

    assert type(Tagged.from_bytes(b"\x90\x00")) is Tagged


def test_a_response_from_a_bytearray_or_bytes_is_the_same() -> None:
    assert ResponseAPDU.from_bytes(bytearray(b"\x01\x02\x90\x00")) == ResponseAPDU(b"\x01\x02", 0x9000)
    assert type(ResponseAPDU.from_bytes(bytearray(b"\x01\x90\x00")).data) is bytes
    with pytest.raises(ValueError, match="at least 2 status bytes"):
        ResponseAPDU.from_bytes(b"\x90")


def test_transmit_with_and_without_a_trace_answers_alike_and_the_trace_records(echo) -> None:
    command = CommandAPDU(0x80, 0x01, 0, 0, b"\x11\x22\x33", le=3)
    saved, echo.trace = echo.trace, None
    try:
        untraced = echo.transmit(command)
        echo.trace = trace = Trace()
        traced = echo.transmit(command)
    finally:
        echo.trace = saved
    assert untraced == traced and untraced.data == b"\x11\x22\x33" and untraced.sw == 0x9000
    assert [entry.command for entry in trace.entries] == ["80 01 00 00 03 11 22 33 Le=3"]


def test_the_fast_path_still_refuses_a_short_command_and_notes_security_state(echo) -> None:
    with pytest.raises(TransportError, match="at least 4 bytes"):
        echo.transmit_raw(b"\x80\x01\x00")
    with echo.exclusive():
        echo._secured = False
        echo.transmit(CommandAPDU(0x00, 0x20, 0x00, 0x80, b"\x31\x32\x33\x34"))  # VERIFY: resets the card after
        assert echo._secured


def test_the_bench_reports_the_in_process_ratio_for_both_sizes(project) -> None:
    figures = run_inprocess_ratio(project, count=50)
    assert set(figures["ratio"]) == set(figures["ratio_over_shared"]) == {"32", "250"}
    for size in ("32", "250"):
        host = figures["results"][f"inprocess_host_layer_{size}"]["median_ms"]
        bridge = figures["results"][f"inprocess_bridge_transmit_{size}"]["median_ms"]
        shared = figures["results"][f"inprocess_bridge_shared_{size}"]["median_ms"]
        assert figures["ratio"][size] == round(host / bridge, 3) and host > 0 and bridge > 0
        assert figures["ratio_over_shared"][size] == round(host / shared, 3) and shared > 0


# ---------------------------------------------------------------- the buffer the simulated card shares

EXT_AID = bytes.fromhex("F0000000AA0501")  # the bridge's ExtendedApplet (test-applets/cardsuite/simtest/ext)
EXT_ECHO = 0x10


@pytest.fixture
def extended(project):
    applets = [AppletInstall(EXT_AID, "cardsuite.simtest.ext.ExtendedApplet")]
    with SimulatorTransport(project, applets=applets, applet_classpath=project.bridge_test_classes) as card:
        card.select(EXT_AID)
        yield card


@pytest.mark.parametrize("size", [32767, 1, 250, 0])  # a long answer first: no byte of it may linger after
def test_the_shared_buffer_carries_extended_apdus_both_ways(extended, size: int) -> None:
    payload = os.urandom(size)
    assert extended.transmit(CommandAPDU(0x80, EXT_ECHO, 0, 0, payload, le=size or None)) == \
        ResponseAPDU(payload, 0x9000)


def test_commands_off_the_shared_path_answer_as_on_it(extended) -> None:
    raw = CommandAPDU(0x80, EXT_ECHO, 0, 0, b"\x01\x02\x03", le=3).to_bytes()
    assert extended.transmit_raw(raw) == extended.transmit_raw(bytearray(raw)) == b"\x01\x02\x03\x90\x00"
    # longer than any APDU, so longer than the shared buffer: through a byte[], and the card says wrong length
    assert extended.transmit_raw(raw[:4] + bytes(SHARED_BUFFER)) == b"\x67\x00"
    assert extended.transmit_raw(raw) == b"\x01\x02\x03\x90\x00"


def test_a_transport_not_connected_or_disconnected_refuses_to_transmit(project) -> None:
    # (a tear on the shared path: tests/wallet/test_wallet_tearing.py, through the same transmit_raw)
    card = SimulatorTransport(project, applets=[])
    with pytest.raises(TransportError, match="not connected"):
        card.transmit_raw(b"\x00\xA4\x04\x00")
    card.connect()
    assert card.transmit_raw(b"\x00\xA4\x04\x00")[-2:] != b""
    card.disconnect()
    with pytest.raises(TransportError, match="not connected"):
        card.transmit_raw(b"\x00\xA4\x04\x00")
