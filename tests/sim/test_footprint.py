"""Memory footprint measured by the bridge (issue 13): what applet code allocates, by kind, at install and per
file created (AllocationMeter counts arrays by element size, applet instances by their fields, transient arrays
by their event)."""

from __future__ import annotations

from cardsuite.apdu import CommandAPDU
from cardsuite.bench.footprint import ISO_DEFAULT_PIN, Footprint, install_footprint
from cardsuite.fs.client import IsoFileSystem, Structure, encode_fcp
from cardsuite.sim.bridge import manifest_applets
from cardsuite.sim.inprocess import SimulatorTransport
from support import ECHO_AID, ISO_AID


def _applet(project, aid):
    return next(a for a in manifest_applets(project) if a.aid == aid)


def test_echo_install_allocates_its_two_short_clear_on_deselect_segment(project) -> None:
    footprint = install_footprint(project, _applet(project, ECHO_AID))
    # EchoApplet: makeTransientShortArray(2, CLEAR_ON_DESELECT), nothing on reset
    assert footprint.clear_on_deselect == 4 and footprint.clear_on_reset == 0
    assert footprint.persistent >= 0 and footprint.api_objects == 0


def test_the_iso_applet_has_a_clear_on_reset_pin_state(project) -> None:
    footprint = install_footprint(project, _applet(project, ISO_AID))
    assert footprint.clear_on_reset >= 1  # PinCode's validated flag: makeTransientBooleanArray(1, CLEAR_ON_RESET)
    assert footprint.persistent > 0


def test_an_ef_body_costs_its_size_in_persistent_bytes_and_a_command_allocates_nothing(project) -> None:
    with SimulatorTransport(project, applets=[_applet(project, ISO_AID)]) as card:
        fs = IsoFileSystem(card)
        fs.select_application(ISO_AID)
        fs.verify(ISO_DEFAULT_PIN)
        created = []
        for fid, size in ((0x7E01, 32), (0x7E02, 96)):
            fs.select_mf()
            before = card.allocations()
            fs.create_file(encode_fcp(fid, Structure.TRANSPARENT, size=size))
            created.append(Footprint.between(before, card.allocations()))
        assert created[1].persistent - created[0].persistent == 96 - 32  # the body, byte for byte
        assert created[0].clear_on_reset == created[0].clear_on_deselect == 0
        before = card.allocations()
        card.send(CommandAPDU(0x00, 0xB0, 0x00, 0x00, le=16))  # READ BINARY of the current EF
        assert Footprint.between(before, card.allocations()) == Footprint(0, 0, 0, 0)
