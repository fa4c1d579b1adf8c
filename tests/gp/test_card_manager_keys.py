"""The simulated card manager's key management (PUT KEY, GP Card Spec v2.3.1 §11.8; Amendment D §7.2.3), in-process
with SCP02 and SCP03: replacing the key set and adding a key version, 3DES and AES keys, the key check values in the
answer, the new keys authenticate and the old ones no longer do, bad commands refused with the card unchanged, and a
tear at every write of a PUT KEY leaves the old key set in force.

The commands are built here from the specification, not with cardsuite's client: these tests check the card."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.crypto.aes import aes_ecb
from cardsuite.crypto.des import tdes_ecb
from cardsuite.errors import CardTornError
from cardsuite.gp.client import GlobalPlatform, GPError
from cardsuite.gp.scp import CardCryptogramError, KeySet, SecureChannel
from cardsuite.project import Project
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport

pytestmark = pytest.mark.sim_only  # JPype access to the card: tearing, the card manager's key versions

DEV = KeySet.single(bytes(range(0x40, 0x50)))
NEW_3DES = KeySet(bytes.fromhex("00112233445566778899AABBCCDDEEFF"), bytes(range(16)), bytes(range(16, 32)))
NEW_AES256 = KeySet(bytes(range(32)), bytes(range(32, 64)), bytes(range(64, 96)))
INS_PUT_KEY = 0xD8


def kcv(key: bytes, aes: bool) -> bytes:
    """[GPCS] B.6 / [AmD] 7.2.3.1: 3DES-ECB of 00..00, AES-ECB of 01..01, first 3 bytes."""
    return aes_ecb(key, b"\x01" * 16)[:3] if aes else tdes_ecb(key, bytes(8))[:3]


def key_field(channel: SecureChannel, key: bytes, aes: bool, check: bytes | None = None) -> bytes:
    """One key data field (§11.8.2.3): type, length, the value under the DEK, the KCV."""
    check = kcv(key, aes) if check is None else check
    if aes:  # [AmD] 7.2.3: the key's length first, the value padded to whole blocks
        encrypted = channel.encrypt_key_data(key + bytes(-len(key) % 16))
        return bytes([0x88, len(encrypted) + 1, len(key)]) + encrypted + bytes([len(check)]) + check
    return bytes([0x80, 16]) + channel.encrypt_key_data(key) + bytes([len(check)]) + check


def put_key_set(gp: GlobalPlatform, keys: KeySet, new_kvn: int, replace_kvn: int, aes: bool, *,
                check: bytes | None = None) -> CommandAPDU:
    assert gp.channel is not None
    data = bytes([new_kvn]) + b"".join(key_field(gp.channel, key, aes, check if i == 1 else None)
                                       for i, key in enumerate((keys.enc, keys.mac, keys.dek)))
    return CommandAPDU(0x80, INS_PUT_KEY, replace_kvn, 0x81, data, le=256)


class Card:
    def __init__(self, project: Project, protocol: str) -> None:
        self.protocol = protocol
        self.aes = protocol == "scp03"
        self.transport = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig(protocol))
        self.transport.connect()

    @property
    def manager(self):
        return self.transport.manager

    def session(self, keys: KeySet = DEV) -> GlobalPlatform:
        gp = GlobalPlatform(self.transport)
        gp.open_secure_channel(keys)
        return gp

    def new_keys(self) -> KeySet:
        return NEW_AES256 if self.aes else NEW_3DES


@pytest.fixture(params=["scp02", "scp03"])
def card(request: pytest.FixtureRequest, project: Project) -> Iterator[Card]:
    card = Card(project, request.param)
    yield card
    card.transport.disconnect()


def _with_kvn(keys: KeySet, kvn: int) -> KeySet:
    return KeySet(keys.enc, keys.mac, keys.dek, kvn)


def test_put_key_replaces_the_key_set_and_answers_the_check_values(card: Card) -> None:
    gp = card.session()
    new = card.new_keys()
    response = gp.send(put_key_set(gp, new, 0x30, 0x01, card.aes), "PUT KEY")
    assert response.data == bytes([0x30]) + b"".join(kcv(k, card.aes) for k in (new.enc, new.mac, new.dek))
    assert list(card.manager.keyVersions()) == [0x30]
    card.session(_with_kvn(new, 0x30))  # the new keys open a session, by version and ...
    card.session(new)  # ... as the card's default key set
    with pytest.raises(CardCryptogramError):
        card.session(DEV)  # the old keys no longer verify
    with pytest.raises(GPError) as gone:
        card.session(_with_kvn(DEV, 0x01))
    assert gone.value.sw == 0x6A88  # and their version is gone


def test_put_key_adds_a_key_version_beside_the_old_one(card: Card) -> None:
    gp = card.session()
    gp.send(put_key_set(gp, card.new_keys(), 0x02, 0x00, card.aes), "PUT KEY")
    assert list(card.manager.keyVersions()) == [0x01, 0x02]
    info = {(k.key_id, k.version): k for k in card.session(_with_kvn(card.new_keys(), 0x02)).key_info()}
    assert {version for _, version in info} == {0x01, 0x02}
    assert info[(1, 2)].components == ((0x88 if card.aes else 0x80, len(card.new_keys().enc)),)
    card.session(_with_kvn(DEV, 0x01))
    card.session(DEV)  # version 01 stays the default


def test_a_3des_key_set_on_an_scp03_card_is_refused_with_the_card_unchanged(project: Project) -> None:
    card = Card(project, "scp03")
    gp = card.session()
    bad = gp.send(put_key_set(gp, NEW_3DES, 0x01, 0x01, aes=False), "PUT KEY", expected=range(0x10000))
    assert bad.sw == 0x6A80
    card.session(DEV)


@pytest.mark.parametrize(("change", "sw"), [
    ("kcv", 0x9485),       # the key check value does not match the decrypted key
    ("missing", 0x6A88),   # replacing a version the card does not have
    ("taken", 0x6A80),     # adding a version the card has
    ("type", 0x9484),      # a key type the card does not take
    ("p2", 0x6A86),        # key identifier 0
])
def test_bad_put_key_is_refused_and_the_old_keys_stay(card: Card, change: str, sw: int) -> None:
    gp = card.session()
    wrong_kcv = b"\x00\x00\x00" if change == "kcv" else None
    command = put_key_set(gp, card.new_keys(), 0x30, 0x01, card.aes, check=wrong_kcv)
    if change == "missing":
        command = CommandAPDU(0x80, INS_PUT_KEY, 0x05, 0x81, command.data, le=256)
    elif change == "taken":
        command = CommandAPDU(0x80, INS_PUT_KEY, 0x00, 0x81, b"\x01" + command.data[1:], le=256)
    elif change == "type":
        # B0, an ECC public key: a type this card does not take (A1, an RSA public key, it takes for DAP keys)
        command = CommandAPDU(0x80, INS_PUT_KEY, 0x01, 0x81, command.data[:1] + b"\xB0" + command.data[2:], le=256)
    elif change == "p2":
        command = CommandAPDU(0x80, INS_PUT_KEY, 0x01, 0x80, command.data, le=256)
    assert gp.send(command, "PUT KEY", expected=range(0x10000)).sw == sw
    assert list(card.manager.keyVersions()) == [0x01]
    card.session(DEV)


def test_put_key_needs_a_secure_channel(card: Card) -> None:
    gp = GlobalPlatform(card.transport)
    gp.select()
    response = card.transport.transmit(CommandAPDU(0x80, INS_PUT_KEY, 0x01, 0x81, b"\x30" + bytes(22), le=256))
    assert response.sw == 0x6982


def test_a_torn_put_key_leaves_the_old_key_set(card: Card) -> None:
    new = card.new_keys()
    writes = 0
    tear = 1
    while True:
        gp = card.session()
        command = gp.channel.wrap(put_key_set(gp, new, 0x30, 0x01, card.aes))
        card.transport.tear_after_writes(tear)
        try:
            response = card.transport.transmit(command)
        except CardTornError:
            card.transport.reset()
            assert list(card.manager.keyVersions()) == [0x01], f"torn at write {tear}"
            with pytest.raises(CardCryptogramError):
                card.session(new)
            tear += 1
            continue
        writes = card.transport.persistent_write_count()
        assert response.sw == 0x9000
        break
    assert tear == writes + 1 == 5  # three keys staged, one commit: every one of them was torn once
    card.session(new)


@pytest.mark.parametrize("level", [0x11, 0x33], ids=["rmac", "renc"])
def test_external_authenticate_answers_without_an_r_mac(project: Project, level: int) -> None:
    """[AmD] 6.2.5: the R-MAC covers the responses after EXTERNAL AUTHENTICATE; its own answer is the bare 9000."""
    from cardsuite.gp.scp import SecurityLevel

    transport = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig("scp03", scp_i=0x70))
    transport.connect()
    answers: list[bytes] = []
    transmit = transport.transmit_raw
    transport.transmit_raw = lambda raw: answers.append(transmit(raw)) or answers[-1]  # type: ignore[method-assign]
    gp = GlobalPlatform(transport)
    gp.open_secure_channel(DEV, SecurityLevel(level))
    assert answers[-1] == b"\x90\x00"
    assert gp.cplc().fields()["ic_fabricator"] == b"\xCA\x5D"  # and the session's R-MAC chain still verifies


def test_scp02_i45_without_icv_encryption(project: Project) -> None:
    """i=45: pseudo-random card challenge, C-MAC chaining without ICV encryption ([GPCS] E.1.1, Table E-1)."""
    transport = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig("scp02", scp_i=0x45))
    transport.connect()
    gp = GlobalPlatform(transport)
    gp.open_secure_channel(DEV, scp02_i=0x45)
    assert gp.registry().isd is not None and gp.registry().isd.state == "OP_READY"  # several chained C-MACs
    gp.open_secure_channel(DEV, scp02_i=0x55)
    with pytest.raises(GPError) as refused:  # an encrypted ICV is not this card's
        gp.registry()
    assert refused.value.sw == 0x6982
