"""PUT KEY and STORE DATA on the host (cardsuite.gp.perso, GlobalPlatform.put_key/store_data): the command data
decrypted again with the DEK outside our code (the `cryptography` package directly), key check values against
a known answer, the card's answer checked, STORE DATA blocks for DGI and BER-TLV data. The channels are the
published sessions of test_gp_scp ([pySim]); the card side is in test_gp_sim_perso."""

from __future__ import annotations

import pytest
from cardsuite.apdu import ResponseAPDU
from cardsuite.gp.client import CardManagerError, GlobalPlatform
from cardsuite.gp.keys import MasterKeys, diversify_emv
from cardsuite.gp.perso import (
    PersoError,
    StoredKeys,
    check_stored,
    parse_put_key_response,
    put_key_command,
    split_objects,
    store_data_blocks,
    store_data_p1,
)
from cardsuite.gp.scp import SCP02, SCP03, GPInitializeUpdateResponse, KeySet, SecurityLevel, kcv
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from test_gp_client import HOST_CHALLENGE, INIT_UPDATE_RESPONSE, KEYS, ScriptedCardManager
from test_gp_scp import SCP02_HOST_CHALLENGE, SCP02_INIT_UPDATE, SCP02_KEYS

h = bytes.fromhex
DEV = bytes(range(0x40, 0x50))
NEW = KeySet(h("00112233445566778899AABBCCDDEEFF"), h("0123456789ABCDEFFEDCBA9876543210"),
             h("F0E1D2C3B4A5968778695A4B3C2D1E0F"), kvn=0x31)


def _scp03() -> SCP03:
    channel = SCP03(KEYS, HOST_CHALLENGE, GPInitializeUpdateResponse.parse(INIT_UPDATE_RESPONSE))
    channel.external_authenticate(SecurityLevel.C_MAC)
    channel.opened()
    return channel


def _scp02() -> SCP02:
    channel = SCP02(SCP02_KEYS, SCP02_HOST_CHALLENGE, GPInitializeUpdateResponse.parse(SCP02_INIT_UPDATE))
    channel.external_authenticate(SecurityLevel.C_MAC)
    channel.opened()
    return channel


def _aes_cbc_decrypt(key: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def _tdes_ecb_decrypt(key: bytes, data: bytes) -> bytes:
    decryptor = Cipher(TripleDES(key + key[:8]), modes.ECB()).decryptor()  # two-key as three
    return decryptor.update(data) + decryptor.finalize()


def test_key_check_values_known_answer() -> None:
    # the 3DES KCV of 40..4F is GlobalPlatformPro's (TestPlaintextKeys, the static DEK of its SCP01 test)
    assert kcv(DEV, aes=False) == h("8BAF47")


def test_put_key_aes_under_the_static_dek() -> None:
    command = put_key_command(_scp03(), NEW, "aes")
    assert (command.p1, command.p2, command.data[0]) == (0x00, 0x81, 0x31)  # new set, keys 1.., version 31
    data, keys = command.data[1:], []
    for _ in range(3):  # 88 | L=11 | 10 | 16 encrypted | 03 | KCV
        assert data[:3] == h("881110") and data[19] == 3
        keys.append(_aes_cbc_decrypt(KEYS.dek, data[3:19]))
        assert data[20:23] == kcv(keys[-1], aes=True)
        data = data[23:]
    assert data == b"" and keys == [NEW.enc, NEW.mac, NEW.dek]
    assert command.kcvs == tuple(kcv(k, aes=True) for k in keys)


def test_put_key_aes_256_and_192_pad_to_whole_blocks() -> None:
    for size in (24, 32):
        new = KeySet.single(bytes(range(size)), 0x10)
        data = put_key_command(_scp03(), new, "aes", replace=0x10).data
        padded = -size % 16 + size
        assert data[1:4] == bytes((0x88, padded + 1, size))
        assert _aes_cbc_decrypt(KEYS.dek, data[4 : 4 + padded])[:size] == new.enc


def test_put_key_3des_under_the_session_dek() -> None:
    channel = _scp02()
    command = put_key_command(channel, KeySet.single(DEV, 0x02), "3des", replace=0x01)
    assert (command.p1, command.p2) == (0x01, 0x81)
    first = command.data[1:]
    assert first[:2] == h("8010") and first[18:22] == h("03") + h("8BAF47")
    assert _tdes_ecb_decrypt(channel.s_dek, first[2:18]) == DEV


def test_put_key_refuses_what_cannot_be_sent() -> None:
    with pytest.raises(PersoError, match="1..127"):
        put_key_command(_scp03(), KeySet.single(DEV, 0), "aes")
    with pytest.raises(PersoError, match="16 bytes"):
        put_key_command(_scp02(), KeySet.single(bytes(32), 1), "3des")
    with pytest.raises(PersoError, match="valid are aes, 3des"):
        put_key_command(_scp03(), NEW, "rsa")


def test_the_cards_answer_is_checked() -> None:
    command = put_key_command(_scp03(), NEW, "aes")
    stored = parse_put_key_response(bytes((0x31,)) + b"".join(command.kcvs))
    check_stored(command, stored)
    with pytest.raises(PersoError, match="not those of the keys sent"):
        check_stored(command, StoredKeys(0x31, (h("000000"),) * 3))
    with pytest.raises(PersoError, match="stored key version 0x32"):
        check_stored(command, StoredKeys(0x32, command.kcvs))
    with pytest.raises(PersoError, match="3-byte key check"):
        parse_put_key_response(h("3101"))


def test_client_put_key_sends_it_and_checks_the_answer() -> None:
    card = ScriptedCardManager()
    gp = GlobalPlatform(card)
    with pytest.raises(CardManagerError, match="needs an open secure channel"):
        gp.put_key(NEW)
    gp.select()
    gp.channel = _scp03()
    reply = put_key_command(_scp03(), NEW, "aes")  # the KCVs the card would compute
    card.queue(0xD8, 0x00, 0x81, ResponseAPDU(bytes((0x31,)) + b"".join(reply.kcvs), 0x9000))
    stored = gp.put_key(NEW)
    assert stored == StoredKeys(0x31, reply.kcvs)
    [apdu] = [c for c in card.sent if c.ins == 0xD8]
    assert apdu.cla == 0x84 and (apdu.p1, apdu.p2) == (0x00, 0x81) and len(apdu.data) == 1 + 3 * 23 + 8
    card.queue(0xD8, 0x31, 0x81, ResponseAPDU(h("31") + h("010203") * 3, 0x9000))
    with pytest.raises(PersoError, match="key check values 010203"):
        gp.put_key(NEW, replace=0x31)


def test_master_keys_are_derived_for_the_card_before_put_key() -> None:
    card = ScriptedCardManager()
    gp = GlobalPlatform(card)
    gp.select()
    gp.channel = _scp03()
    kdd = gp.channel.response.key_diversification_data
    master = MasterKeys.of(h("00112233445566778899AABBCCDDEEFF"), "emv", 0x20)
    card.queue(0xD8, 0x00, 0x81, ResponseAPDU(b"", 0x9000))
    stored = gp.put_key(master, key_type="3des")
    derived = diversify_emv(master.enc, kdd)
    assert stored.kcvs == tuple(kcv(k, aes=False) for k in (derived.enc, derived.mac, derived.dek))


# ---------------------------------------------------------------- STORE DATA


def test_dgi_and_tlv_objects_are_split_and_checked() -> None:
    dgis = h("0101") + h("03") + h("AABBCC") + h("9F10") + h("FF0100") + bytes(256)
    assert [len(o) for o in split_objects(dgis, "dgi")] == [6, 5 + 256]
    with pytest.raises(PersoError, match="claims 16 bytes"):
        split_objects(h("010110AABB"), "dgi")
    tlv = h("5A0811223344556677885F2403301231")
    assert split_objects(tlv, "tlv") == [h("5A081122334455667788"), h("5F2403301231")]
    with pytest.raises(PersoError, match="not BER-TLV"):
        split_objects(h("5A08112233"), "tlv")


def test_blocks_hold_whole_objects_and_split_the_large_ones() -> None:
    small = h("0101") + h("02") + h("AABB")  # 5 bytes
    large = h("0202") + h("FF012C") + bytes(300)  # 305 bytes
    blocks = store_data_blocks(small * 3 + large + small, "dgi", room=239)
    assert [len(b) for b in blocks] == [15, 239, 66 + 5]
    assert b"".join(blocks) == small * 3 + large + small
    assert store_data_p1("dgi", last=True) == 0x88 and store_data_p1("tlv", last=False) == 0x10
    assert store_data_p1("dgi", last=True, encrypted=True) == 0xE8
    with pytest.raises(PersoError, match="no data"):
        store_data_blocks(b"", "dgi", 239)


def test_client_store_data_numbers_the_blocks_and_flags_the_last() -> None:
    card = ScriptedCardManager()
    gp = GlobalPlatform(card)
    gp.select()
    gp.channel = _scp03()
    gp.install_for_personalization(h("F0636172641001"))
    data = (h("8F01") + h("FF00C8") + bytes(200)) * 2
    assert gp.store_data(data, "dgi") == 2
    install = next(c for c in card.sent if c.ins == 0xE6)
    assert install.p1 == 0x20 and install.data[:-8] == h("000007F0636172641001000000")
    stores = [c for c in card.sent if c.ins == 0xE2]
    assert [(c.p1, c.p2) for c in stores] == [(0x08, 0), (0x88, 1)]
