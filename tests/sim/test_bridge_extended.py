"""Extended-length APDUs (ISO 7816-3 12.1.3, javacardx.apdu.ExtendedLength): an applet implementing
ExtendedLength gets up to 32,767 data bytes in one command, in-process and through pcscd/vpcd (and `cardsuite
send` takes them); an applet that does not is answered 6700 by the runtime, and so is any Nc beyond a Java Card
APDU buffer's short offsets."""

from __future__ import annotations

import os

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.cli.main import main
from cardsuite.sim.bridge import AppletInstall
from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots
from support import ECHO_AID, select_hex
from support.bridgecard import BridgeCard, Journal, select

EXT_AID = bytes.fromhex("F0000000AA0501")
EXT_CLASS = "cardsuite.simtest.ext.ExtendedApplet"
ECHO, LENGTHS = 0x10, 0x11
SIZES = [256, 1000, 4096, 32767]


@pytest.fixture
def extended(bridge_card: BridgeCard) -> BridgeCard:
    bridge_card.card.install(bridge_card._jbytes(EXT_AID), EXT_CLASS, bridge_card._jbytes(b""))
    assert select(bridge_card, 0, EXT_AID) == 0x9000
    return bridge_card


@pytest.mark.parametrize("size", SIZES)
def test_an_extended_length_applet_echoes_up_to_32767_bytes(extended: BridgeCard, size: int) -> None:
    payload = os.urandom(size)
    assert extended.transmit(CommandAPDU(0x80, ECHO, 0, 0, payload, le=size).to_bytes()) == (payload, 0x9000)


def test_the_applet_sees_the_extended_nc_and_ne(extended: BridgeCard) -> None:
    command = CommandAPDU(0x80, LENGTHS, 0, 0, bytes(300), le=1000)
    assert extended.transmit(command.to_bytes()) == (bytes.fromhex("012C03E8"), 0x9000)


def test_nc_beyond_32767_is_wrong_length(extended: BridgeCard) -> None:
    assert extended.transmit(CommandAPDU(0x80, ECHO, 0, 0, bytes(32768)).to_bytes()) == (b"", 0x6700)


def test_an_applet_without_extended_length_gets_6700_and_keeps_its_state(bridge_card: BridgeCard) -> None:
    """JournalApplet (no ExtendedLength): JC API ExtendedLength, the runtime refuses extended commands."""
    assert bridge_card.transmit(CommandAPDU(0x80, 0x10, 0x05, 0, bytes(300)).to_bytes()) == (b"", 0x6700)
    assert bridge_card.transmit(CommandAPDU(0x80, 0x10, 0x05, 0, le=1000).to_bytes()) == (b"", 0x6700)
    assert bridge_card.read().persistent() == Journal.all(0x01)


@pytest.fixture
def vpcd_extended(project):
    """A card behind vpcd with ExtendedApplet, from the bridge's test applets."""
    ensure_pcscd()
    slots = free_slots()
    if not slots:
        pytest.skip("every vpcd slot already holds a card")
    applets = [AppletInstall(EXT_AID, EXT_CLASS), AppletInstall(ECHO_AID, "cardsuite.simtest.EchoApplet")]
    with VpcdSimulator(project, slot=slots[0], applets=applets,
                       applet_classpath=project.bridge_test_classes) as simulator:
        yield simulator


def test_extended_apdus_through_pcscd_and_cardsuite_send(vpcd_extended, capsys) -> None:
    payload = os.urandom(32767)
    with vpcd_extended.transport() as card:
        card.select(EXT_AID)
        response = card.transmit(CommandAPDU(0x80, ECHO, 0, 0, payload, le=len(payload)))
        assert (response.data, response.sw) == (payload, 0x9000)
    small = os.urandom(300)
    spec = f"vpcd:{vpcd_extended.slot}"
    echo_300 = CommandAPDU(0x80, ECHO, 0, 0, small, le=300).to_bytes().hex()
    assert main(["send", "--card", spec, select_hex(EXT_AID), echo_300]) == 0
    assert capsys.readouterr().out.splitlines() == ["9000 (success)", f"{small.hex().upper()} 9000 (success)"]
    # an applet without ExtendedLength: the runtime's 6700 comes back through the same path
    assert main(["send", "--card", spec, select_hex(ECHO_AID), echo_300.replace("8010", "8001", 1)]) == 2
    assert capsys.readouterr().out.splitlines()[-1] == "6700 (wrong length)"
