"""STORE DATA on the simulated card manager (GP Card Spec v2.3.1 §11.11, §11.5.2.3.6), in-process with SCP02 and
SCP03: the ISD's own data objects (IIN, CIN, key diversification data, the CPLC's pre-personalisation and
personalisation fields) in BER-TLV and as DGIs, read back by GET DATA and used by INITIALIZE UPDATE; a bad block
stores nothing and a torn one neither; after INSTALL [for personalization] the commands go to the application,
which sees them as a card hands them over (the bridge's test applet answers what it received)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.errors import CardTornError
from cardsuite.gp.client import GlobalPlatform
from cardsuite.gp.scp import GPInitializeUpdateResponse, KeySet, initialize_update
from cardsuite.project import Project
from cardsuite.sim.bridge import AppletInstall, CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport

pytestmark = pytest.mark.sim_only  # tearing and the bridge's test applet need the in-process card

DEV = KeySet.single(bytes(range(0x40, 0x50)))
INS_STORE_DATA, INS_INSTALL, INS_GET_DATA = 0xE2, 0xE6, 0xCA
LAST, BER_TLV, DGI = 0x80, 0x10, 0x08  # P1 bits ([GPCS] Table 11-89)
PERSO = bytes.fromhex("4711" "6335" "0000CAFE")  # personaliser, date (YDDD), equipment id
PRE_PERSO = bytes.fromhex("0815" "6001" "0000BEEF")
TEST_APPLET = bytes.fromhex("F0000000AA0201")  # the bridge's test EchoApplet, installed on the card


class _BridgeTestApplets(Project):
    """The project, its simulator classes being the bridge's test applets."""

    @property
    def sim_classes(self):  # type: ignore[override]
        return self.bridge_test_classes


def _card(project: Project, protocol: str, applets: list[AppletInstall] | None = None) -> SimulatorTransport:
    card = SimulatorTransport(project, applets=applets or [], card_manager=CardManagerConfig(protocol))
    card.connect()
    return card


@pytest.fixture(params=["scp02", "scp03"])
def card(request: pytest.FixtureRequest, project: Project) -> Iterator[SimulatorTransport]:
    card = _card(project, request.param)
    yield card
    card.disconnect()


def store(gp: GlobalPlatform, data: bytes, p1: int = LAST | BER_TLV, block: int = 0) -> int:
    return gp.send(CommandAPDU(0x80, INS_STORE_DATA, p1, block, data), "STORE DATA", expected=range(0x10000)).sw


def get_data(card: SimulatorTransport, tag: int) -> tuple[bytes, int]:
    response = card.transmit(CommandAPDU(0x80, INS_GET_DATA, tag >> 8, tag & 0xFF, le=256))
    return response.data, response.sw


def session(card: SimulatorTransport) -> GlobalPlatform:
    gp = GlobalPlatform(card)
    gp.open_secure_channel(DEV)
    return gp


def test_isd_data_objects_in_ber_tlv(card: SimulatorTransport) -> None:
    gp = session(card)
    assert get_data(card, 0x0042)[1] == 0x6A88  # no IIN before personalisation
    iin, cin, kdd = bytes.fromhex("42000001"), bytes.fromhex("0102030405060708090A"), bytes(range(10, 20))
    assert store(gp, b"\x42\x04" + iin + b"\x45\x0A" + cin + b"\xCF\x0A" + kdd) == 0x9000
    assert get_data(card, 0x0042) == (b"\x42\x04" + iin, 0x9000)
    assert get_data(card, 0x0045) == (b"\x45\x0A" + cin, 0x9000)
    assert get_data(card, 0x00CF) == (b"\xCF\x0A" + kdd, 0x9000)
    response = card.transmit(initialize_update(0, bytes(8)))  # the KDD heads INITIALIZE UPDATE's answer
    assert GPInitializeUpdateResponse.parse(response.data).key_diversification_data == kdd


def test_cplc_personalisation_fields_as_dgis_and_as_gp_set_perso_sends_them(card: SimulatorTransport) -> None:
    gp = session(card)
    before = gp.cplc()
    # gp --set-pre-perso: one DGI 9F67 in P1 80; here with the structure bits saying DGI
    assert store(gp, b"\x9F\x67\x08" + PRE_PERSO, p1=LAST | DGI) == 0x9000
    assert store(gp, b"\x9F\x66\x08" + PERSO, p1=LAST) == 0x9000  # gp --set-perso: P1 80, no structure bits
    fields = gp.cplc().fields()
    assert fields["ic_personalizer"] == PERSO[:2] and fields["ic_personalization_date"] == PERSO[2:4]
    assert fields["ic_pre_personalizer"] == PRE_PERSO[:2]
    assert fields["ic_serial_number"] == before.fields()["ic_serial_number"]


def test_blocks_in_sequence(card: SimulatorTransport) -> None:
    gp = session(card)
    assert store(gp, b"\x42\x01\x01", p1=BER_TLV, block=0) == 0x9000
    assert store(gp, b"\x45\x01\x02", p1=BER_TLV, block=2) == 0x6A86  # block 01 expected
    assert store(gp, b"\x45\x01\x03", p1=LAST | BER_TLV, block=0) == 0x9000  # a new sequence
    assert get_data(card, 0x0045)[0] == b"\x45\x01\x03"


@pytest.mark.parametrize(("data", "p1", "sw"), [
    (b"\x42\x04\x01\x02\x03\x04" + b"\x9F\x66\x02\x00\x00", LAST, 0x6A80),  # CPLC fields have 8 bytes
    (b"\x42\x04\x01\x02\x03\x04" + b"\x5F\x20\x01\x41", LAST, 0x6A88),      # the ISD keeps no 5F20
    (b"\x42\x05\x01\x02", LAST, 0x6A80),                                    # not well formed
    (b"\x42\x04\x01\x02\x03\x04", LAST | 0x60, 0x6A80),                     # encrypted: the ISD's data is in clear
    (b"\x42\x04\x01\x02\x03\x04", LAST | 0x18, 0x6A86),                     # structure 11 is reserved
])
def test_a_bad_block_stores_nothing(card: SimulatorTransport, data: bytes, p1: int, sw: int) -> None:
    gp = session(card)
    assert store(gp, data, p1=p1) == sw
    assert get_data(card, 0x0042)[1] == 0x6A88


def test_store_data_needs_a_secure_channel(card: SimulatorTransport) -> None:
    GlobalPlatform(card).select()
    assert card.transmit(CommandAPDU(0x80, INS_STORE_DATA, 0x80, 0x00, b"\x42\x01\x01")).sw == 0x6982


def test_a_torn_store_data_stores_nothing(project: Project) -> None:
    card = _card(project, "scp03")
    for tear in (1, 2, 3):  # two objects staged, one commit
        gp = session(card)
        command = gp.channel.wrap(CommandAPDU(0x80, INS_STORE_DATA, 0x90, 0x00, b"\x42\x01\x01\x45\x01\x02"))
        card.tear_after_writes(tear)
        with pytest.raises(CardTornError):
            card.transmit(command)
        card.reset()
        assert get_data(card, 0x0042)[1] == 0x6A88 and get_data(card, 0x0045)[0] != b"\x45\x01\x02"
    assert store(session(card), b"\x42\x01\x01\x45\x01\x02") == 0x9000
    assert card.persistent_write_count() == 3


@pytest.mark.parametrize("protocol", ["scp02", "scp03"])
def test_after_install_for_personalization_the_application_gets_store_data(project: Project, protocol: str) -> None:
    applet = AppletInstall(TEST_APPLET, "cardsuite.simtest.EchoApplet")
    card = _card(_BridgeTestApplets(project.root), protocol, [applet])
    try:
        gp = session(card)
        for_perso = bytes([0, 0, len(TEST_APPLET)]) + TEST_APPLET + bytes(3)
        gp.send(CommandAPDU(0x80, INS_INSTALL, 0x20, 0x00, for_perso, le=256), "INSTALL [for personalization]")
        dgis = b"\x01\x01\x03ABC" + b"\x02\x02\x01Z"
        response = gp.send(CommandAPDU(0x80, INS_STORE_DATA, LAST | DGI, 0x00, dgis, le=256), "STORE DATA")
        # the applet got CLA 80 (secure messaging removed by its security domain), P1, P2 and the plain data
        assert response.data == bytes([0x80, INS_STORE_DATA, LAST | DGI, 0x00]) + dgis
        assert get_data(card, 0x0042)[1] == 0x6A88  # nothing went to the ISD
        # another session: the ISD's STORE DATA again
        assert store(session(card), b"\x42\x01\x01") == 0x9000
        gp = session(card)
        missing = bytes([0, 0, 5]) + bytes.fromhex("F000000099") + bytes(3)
        refused = gp.send(CommandAPDU(0x80, INS_INSTALL, 0x20, 0x00, missing, le=256), "INSTALL", range(0x10000))
        assert refused.sw == 0x6A88
    finally:
        card.disconnect()


def test_without_structure_information_dgis_are_told_by_their_first_byte(card: SimulatorTransport) -> None:
    """gp --store-dgi-file sends DGIs with P1 00/80 (no structure bits): DGI 0042 is the IIN, as BER-TLV 42 is."""
    gp = session(card)
    assert store(gp, b"\x00\x42\x02\x12\x34", p1=LAST) == 0x9000
    assert get_data(card, 0x0042) == (b"\x42\x02\x12\x34", 0x9000)


@pytest.mark.parametrize(("protocol", "i", "channel"), [
    ("scp02", 0x55, "A006" "800102" "810155"),
    ("scp03", 0x70, "A009" "800103" "810170" "820107"),
])
def test_card_capabilities_and_the_sequence_counter(project: Project, protocol: str, i: int, channel: str) -> None:
    """GET DATA 0067 ([GPCS] H.4): the secure channel the card speaks, SD and application privileges, the LFDB hash
    and DAP schemes it verifies with; C1 the counter behind SCP02's session keys and SCP03's pseudo-random
    challenge."""
    card = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig(protocol, scp_i=i))
    card.connect()
    caps, sw = get_data(card, 0x0067)
    # SD privileges with DAP Verification and Mandated DAP (C1) for SSDs, LFDB hashes SHA-1..SHA-512, DAP RSA Scheme 1
    assert sw == 0x9000 and caps.hex().upper() == "67" + f"{len(channel) // 2 + 19:02X}" + channel + "8103DFFE80" \
        "8203040000" "830401020304" "870101"
    session(card)
    counter, sw = get_data(card, 0x00C1)
    assert sw == 0x9000 and counter[0] == 0xC1 and int.from_bytes(counter[2:], "big") == 1
