"""The default-selected application (GP Card Spec v2.3.1 §6.6, the Card Reset privilege) on the simulated card
manager, in-process with SCP02 and SCP03: given at install (gp --install --default), by INSTALL [for make
selectable] (what gp --make-default sends) and by INSTALL [for registry update]; the application answers SELECT
without an AID and is selected after a reset; Card Reset is one application's at a time and returns to the ISD."""

from __future__ import annotations

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.gp.client import GlobalPlatform
from cardsuite.sim.inprocess import SimulatorTransport
from support import ABSENT_AID
from support.cardmanager import APPLET, ECHO, SCPS, empty_card_manager, isd_session

pytestmark = pytest.mark.sim_only  # resets the in-process card

CARD_RESET = b"\x04\x00\x00"
INS_INSTALL = 0xE6


card = pytest.fixture(params=SCPS, name="card")(empty_card_manager)


def echo_answers(card: SimulatorTransport) -> bool:
    """The echo applet's loopback, sent to whatever is selected."""
    response = card.transmit(CommandAPDU(0x80, 0x01, 0, 0, b"\x0A\x0B", le=256))
    return response.sw == 0x9000 and response.data == b"\x0A\x0B"


def select_without_aid(card: SimulatorTransport) -> CommandAPDU:
    return card.transmit(CommandAPDU(0x00, 0xA4, 0x04, 0x00, le=256))


def privileges(gp: GlobalPlatform, aid: bytes | None) -> bytes:
    registry = gp.registry()
    entry = registry.isd if aid is None else registry.application(aid)
    assert entry is not None
    return entry.privileges


def test_default_selected_at_install_answers_select_without_aid_and_after_reset(card: SimulatorTransport) -> None:
    gp = isd_session(card)
    isd_before = privileges(gp, None)
    assert isd_before[0] & 0x04  # the ISD is the default until an application is given Card Reset
    gp.load_cap(ECHO)
    gp.install_for_install(ECHO.package_aid, APPLET, privileges=CARD_RESET)
    assert privileges(gp, APPLET)[0] & 0x04 and not privileges(gp, None)[0] & 0x04

    fci = select_without_aid(card)
    assert fci.sw == 0x9000 and not fci.data.startswith(b"\x6F")  # the applet, not the ISD's FCI
    assert echo_answers(card)
    card.reset()
    assert echo_answers(card)  # selected at power-up, no SELECT sent
    gp = isd_session(card)  # the ISD by its AID, as ever
    gp.delete(APPLET)
    card.reset()
    assert not echo_answers(card)
    assert select_without_aid(card).data.startswith(b"\x6F")  # the ISD again
    assert privileges(isd_session(card), None)[0] & 0x04


def test_make_default_and_registry_update_move_card_reset(card: SimulatorTransport) -> None:
    gp = isd_session(card)
    gp.load_cap(ECHO)
    gp.install_for_install(ECHO.package_aid, APPLET)
    gp.install_for_install(ECHO.package_aid, APPLET, ABSENT_AID)
    # gp --make-default: INSTALL [for make selectable] of a SELECTABLE application with Card Reset
    make_default = bytes([0, 0, len(APPLET)]) + APPLET + b"\x03" + CARD_RESET + b"\x00"
    gp.send(CommandAPDU(0x80, INS_INSTALL, 0x08, 0x00, make_default, le=256), "INSTALL [for make selectable]")
    assert privileges(gp, APPLET)[0] & 0x04
    # INSTALL [for registry update] (Table 11-46) gives it to the other instance; the first one loses it
    update = bytes([0, 0, len(ABSENT_AID)]) + ABSENT_AID + b"\x03" + CARD_RESET + b"\x00\x00"
    gp.send(CommandAPDU(0x80, INS_INSTALL, 0x40, 0x00, update, le=256), "INSTALL [for registry update]")
    assert privileges(gp, ABSENT_AID)[0] & 0x04 and not privileges(gp, APPLET)[0] & 0x04
    unknown = bytes([0, 0, 5]) + bytes.fromhex("F000000099") + b"\x03" + CARD_RESET + b"\x00\x00"
    refused = gp.send(CommandAPDU(0x80, INS_INSTALL, 0x40, 0x00, unknown, le=256), "INSTALL", range(0x10000))
    assert refused.sw == 0x6A88
    card.reset()
    assert echo_answers(card)  # the instance holding Card Reset is selected at power-up


def test_a_locked_default_application_is_not_selected(card: SimulatorTransport) -> None:
    gp = isd_session(card)
    gp.load_cap(ECHO)
    gp.install_for_install(ECHO.package_aid, APPLET, privileges=CARD_RESET)
    gp.set_application_lock(APPLET, True)
    card.reset()
    assert not echo_answers(card)
    assert select_without_aid(card).data.startswith(b"\x6F")  # the ISD answers while its default is LOCKED
    gp = isd_session(card)
    gp.set_application_lock(APPLET, False)
    card.reset()
    assert echo_answers(card)  # unlocked, it is the default again
