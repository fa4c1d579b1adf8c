"""Diversified static keys (cardsuite.gp.keys.diversify_emv/visa2/kdf3, and the simulated card holding such keys):
the published check values of GlobalPlatformPro's own tests (master 40..4F, KDD 00..09, and its external SCP03
vector), and an issued simulated card whose keys the bridge derived from the master with its own KDD opening a
session with the keys the host derives from the KDD the card announces."""

from __future__ import annotations

import pytest
from cardsuite.crypto.aes import aes_ecb
from cardsuite.crypto.des import tdes_ecb
from cardsuite.errors import ConfigurationError
from cardsuite.gp.client import GlobalPlatform
from cardsuite.gp.keys import diversify, diversify_emv, diversify_kdf3, diversify_visa2
from cardsuite.gp.scp import CardCryptogramError, GPInitializeUpdateResponse, KeySet, initialize_update
from cardsuite.project import Project
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport

MASTER = bytes(range(0x40, 0x50))
KDD = bytes(range(10))
h = bytes.fromhex


def des_kcvs(keys: KeySet) -> list[str]:
    return [tdes_ecb(k, bytes(8))[:3].hex().upper() for k in (keys.enc, keys.mac, keys.dek)]


def aes_kcvs(keys: KeySet) -> list[str]:
    return [aes_ecb(k, b"\x01" * 16)[:3].hex().upper() for k in (keys.enc, keys.mac, keys.dek)]


def test_emv_and_visa2_check_values() -> None:
    assert des_kcvs(diversify_emv(MASTER, KDD)) == ["C33013", "6F4CA6", "BB8179"]
    assert des_kcvs(diversify_visa2(MASTER, KDD)) == ["2BE598", "58DA38", "3C328E"]


@pytest.mark.parametrize(("master", "expected"), [
    (MASTER, ["E79C05", "D1BD77", "3FDE8C"]),
    (MASTER + bytes(range(0x50, 0x58)), ["1DE8EA", "47C00C", "C04D76"]),
    (MASTER + bytes(range(0x50, 0x60)), ["2972D2", "036F94", "5D57B8"]),
], ids=["aes128", "aes192", "aes256"])
def test_kdf3_check_values(master: bytes, expected: list[str]) -> None:
    assert aes_kcvs(diversify_kdf3(master, KDD)) == expected


def test_kdf3_external_vector() -> None:
    master = h("8C72C72CF908411653018807950D82FBAD947562F0828A0B10B8B9606ABF3BCD")
    enc = diversify_kdf3(master, h("D9B1DE5D0362DEDCE4FB")).enc
    assert enc == h("9AAC5D0B3601F89438A0D9D0B6B256CFB47E6462DFA5228D3420C4AC7C224781")


@pytest.mark.parametrize(("call", "message"), [
    (lambda: diversify_emv(MASTER, KDD[:8]), "10 bytes, got 8"),
    (lambda: diversify_emv(MASTER + bytes(8), KDD), "3DES master key has 16 bytes"),
    (lambda: diversify_kdf3(MASTER[:8], KDD), "AES master key"),
    (lambda: diversify("visa", MASTER, KDD), "emv, visa2, kdf3"),
])
def test_bad_input(call, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        call()


@pytest.mark.sim_only
@pytest.mark.parametrize(("protocol", "kdf"), [("scp02", "emv"), ("scp02", "visa2"), ("scp03", "kdf3")])
def test_an_issued_card_with_diversified_keys(project: Project, protocol: str, kdf: str) -> None:
    master = h("00112233445566778899AABBCCDDEEFF")
    config = CardManagerConfig(protocol, keys=(master,) * 3, kdf=kdf, serial=h("12345678"))
    card = SimulatorTransport(project, applets=[], card_manager=config)
    card.connect()
    try:
        kdd = GPInitializeUpdateResponse.parse(card.transmit(initialize_update(0, bytes(8))).data) \
            .key_diversification_data
        gp = GlobalPlatform(card)
        gp.open_secure_channel(diversify(kdf, master, kdd))
        assert gp.registry().isd is not None
        with pytest.raises(CardCryptogramError):  # the master key itself is not the card's key
            GlobalPlatform(card).open_secure_channel(KeySet.single(master))
    finally:
        card.disconnect()
