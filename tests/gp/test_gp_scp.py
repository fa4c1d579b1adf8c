"""SCP02 and SCP03 host crypto against published vectors.

Sources (data only; the code under test is ours):
- [pySim] osmocom/pysim, tests/unittests/test_globalplatform.py (commit a3962b20): a whole SCP02 session
  (i=15/55, key version 0x20) and SCP03 sessions with AES-128 and AES-256 keys at security levels 11 (C-MAC,
  R-MAC), 03 (C-MAC, C-DECRYPTION) and 33 (all four), each command of the four ISO cases wrapped in turn;
- [omfgp] miketlk/omfgp, tests/omfgp/scp02_test.py and scp03_test.py: SCP02 session keys for sequence counter
  0007 and the SCP03 KDF outputs (session keys, cryptograms, pseudo-random card challenge) for the 40..4F key.
"""

from __future__ import annotations

import pytest
from cardsuite.apdu import CommandAPDU, ResponseAPDU
from cardsuite.crypto.aes import scp03_kdf
from cardsuite.gp.scp import (
    DERIVE_CARD_CHALLENGE,
    DERIVE_CARD_CRYPTOGRAM,
    DERIVE_HOST_CRYPTOGRAM,
    DERIVE_S_ENC,
    DERIVE_S_MAC,
    DERIVE_S_RMAC,
    SCP02,
    SCP02_C_MAC,
    SCP02_ENC,
    SCP02_R_MAC,
    SCP03,
    CardCryptogramError,
    GPInitializeUpdateResponse,
    KeySet,
    SecureChannelError,
    SecurityLevel,
    initialize_update,
    scp02_session_key,
)

h = bytes.fromhex
DEV_KEY = h("404142434445464748494A4B4C4D4E4F")

# ---------------------------------------------------------------- SCP02 [pySim]

SCP02_KEYS = KeySet(h("100102030405060708090a0b0c0d0e0f"), h("101102030405060708090a0b0c0d0e0f"),
                    h("102102030405060708090a0b0c0d0e0f"), kvn=0x20)
SCP02_HOST_CHALLENGE = h("40A62C37FA6304F8")
SCP02_INIT_UPDATE = h("00000000000000000000700200016B4524ABEE7CF32EA3838BC148F3")
SCP02_CASES = [  # plain command -> wrapped, in this order (the C-MAC chains)
    ("80F22002", "84F220020814DB34FA4341DCA8"),
    ("80CA006600", "84CA00660855ED7C5FF069512B00"),
    ("80F220020A4F0212345C054F9F70C5", "84F22002124F0212345C054F9F70C58FC1B380C4228AF8"),
    ("80F28002024F0000", "84F280020A4F003B95F09317DE6A4E00"),
]


def _scp02(i: int = 0x55) -> SCP02:
    return SCP02(SCP02_KEYS, SCP02_HOST_CHALLENGE, GPInitializeUpdateResponse.parse(SCP02_INIT_UPDATE), i=i)


def test_scp02_initialize_update_response_fields() -> None:
    r = GPInitializeUpdateResponse.parse(SCP02_INIT_UPDATE)
    assert (r.kvn, r.scp, r.sequence_counter, r.card_challenge) == (0x70, 0x02, h("0001"), h("6B4524ABEE7C"))
    assert r.card_cryptogram == h("F32EA3838BC148F3")


@pytest.mark.parametrize("i", [0x15, 0x55])
def test_scp02_session_matches_pysim(i: int) -> None:
    channel = _scp02(i)  # verifies the card cryptogram
    auth = channel.external_authenticate(SecurityLevel.C_MAC)
    assert auth.to_bytes() == h("8482010010BA6961667737C5BCEBECE14C7D6A4376")
    channel.opened()
    for plain, wrapped in SCP02_CASES:
        assert channel.wrap(CommandAPDU.from_hex(plain)).to_bytes() == h(wrapped)


def test_scp02_icv_encryption_is_what_makes_the_chain_match() -> None:
    """i=05 (no ICV encryption) agrees on EXTERNAL AUTHENTICATE (zero ICV) and differs after: the vector
    exercises the ICV encryption of i=15/55."""
    channel = _scp02(0x05)
    assert channel.external_authenticate().to_bytes() == h("8482010010BA6961667737C5BCEBECE14C7D6A4376")
    channel.opened()
    assert channel.wrap(CommandAPDU.from_hex(SCP02_CASES[0][0])).to_bytes() != h(SCP02_CASES[0][1])


def test_scp02_wrong_keys_fail_on_the_card_cryptogram() -> None:
    wrong = KeySet.single(DEV_KEY, 0x20)
    with pytest.raises(CardCryptogramError, match="wrong keys"):
        SCP02(wrong, SCP02_HOST_CHALLENGE, GPInitializeUpdateResponse.parse(SCP02_INIT_UPDATE))
    tampered = SCP02_INIT_UPDATE[:-1] + b"\xff"
    with pytest.raises(CardCryptogramError):
        SCP02(SCP02_KEYS, SCP02_HOST_CHALLENGE, GPInitializeUpdateResponse.parse(tampered))


def test_scp02_session_keys_match_omfgp() -> None:
    counter = h("0007")
    assert scp02_session_key(DEV_KEY, SCP02_C_MAC, counter) == h("7A227D376A9DBE23AB50B7DCB45B2093")
    assert scp02_session_key(DEV_KEY, SCP02_R_MAC, counter) == h("EF14C57DB4BB9015E88963D9D920A588")
    assert scp02_session_key(DEV_KEY, SCP02_ENC, counter) == h("A2268F71917EFE0F33CC6166E1154E27")


def test_scp02_c_decryption_round_trip() -> None:
    """No published vector for SCP02 C-DECRYPTION: check the structure (MAC over the plain data, data padded
    and encrypted under S-ENC with a zero ICV) by decrypting it back."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    channel = _scp02()
    channel.external_authenticate(SecurityLevel.C_MAC | SecurityLevel.C_DECRYPTION)
    channel.opened()
    plain = CommandAPDU(0x80, 0xE6, 0x0C, 0x00, bytes(range(20)))
    wrapped = channel.wrap(plain)
    assert wrapped.cla == 0x84 and len(wrapped.data) == 24 + 8
    decryptor = Cipher(TripleDES(channel.s_enc + channel.s_enc[:8]), modes.CBC(bytes(8))).decryptor()
    assert decryptor.update(wrapped.data[:24]) + decryptor.finalize() == bytes(range(20)) + b"\x80" + bytes(3)
    assert channel.max_data() == 239


# ---------------------------------------------------------------- SCP03 [pySim]

KEYSET_AES128 = KeySet(h("000102030405060708090a0b0c0d0e0f"), h("101112131415161718191a1b1c1d1e1f"),
                       h("202122232425262728292a2b2c2d2e2f"), kvn=0x30)
KEYSET_AES256 = KeySet(h("000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f"),
                       h("101112131415161718191a1b1c1d1e1f101112131415161718191a1b1c1d1e1f"),
                       h("202122232425262728292a2b2c2d2e2f202122232425262728292a2b2c2d2e2f"), kvn=0x32)
GET_EID = "80E2910006BF3E035C015A00"
EID = h("bf3e125a1089882119900000000000000000000005")
PLAIN_CASES = ("80F22002", "80CA006600", "80F220020A4F0212345C054F9F70C5", "80F28002024F0000")

# keys, INITIALIZE UPDATE command, its response, EXTERNAL AUTHENTICATE, wrapped GET EID, its response as
# the card sent it, then the four cases wrapped
SCP03_SESSIONS = {
    "aes128-level11": (KEYSET_AES128, "8050300008b13e5f938fc108c400",
                       "000000000000000000003003703eb51047495b249f66c484c1d2ef1948000002",
                       "84821100107d5f5826a993ebc89eea24957fa0b3ce",
                       "84e291000ebf3e035c015a558d036518a2829700",
                       "bf3e125a1089882119900000000000000000000005971be68992dbbdfa",
                       ("84f220020863a63f8959827fb2", "84ca006608a0c6a4a74166f7ce00",
                        "84f22002124f0212345c054f9f70c52249b50272656536", "84f280020a4f00e91443f6dce6b8ed00")),
    "aes128-level03": (KEYSET_AES128, "80503000088e1552d0513c60f300",
                       "0000000000000000000030037030760cd2c47c1dd395065fe5ead8a9d7000001",
                       "8482030010fd4721a14d9b07003c451d2f8ae6bb21",
                       "84e2910018ca9c00f6713d79bc8baa642bdff51c3f6a4082d3bd9ad26c00",
                       "bf3e125a1089882119900000000000000000000005",
                       ("84f2200208c9811b11f1264cf1", "84ca006608e10ab60b3054798800",
                        "84f22002184e2908bdb48b2315a55482e9e936ca122d6ecfae7d17416e",
                        "84f28002180dd10a6b6193e5340b9e77d32d5a179cd710ac2773aefb2800")),
    "aes128-level33": (KEYSET_AES128, "8050300008fdf38259a1e0de4400",
                       "000000000000000000003003703b1aca81e821f219081cdc01c26b372d000003",
                       "84823300108c36f96bcc00724a4e13ad591d7da3f0",
                       "84e2910018267a85dfe4a98fca6fb0527e0dfecce4914e40401433c87f00",
                       "f3ba2b1013aa6224f5e1c138d71805c569e5439b47576260b75fc021b25097cb2e68f8a0144975b9",
                       ("84f2200208ac6a59024bed84cc", "84ca006608409912ad8fb7aed000",
                        "84f22002185f3dafc3ac14c381536a488bf44e06d056df9d74dbd21e5a",
                        "84f280021865165105be3373347d0424d4400af2ac393f569ec779389e00")),
    "aes256-level33": (KEYSET_AES256, "805032000897b2055fe58599fd00",
                       "00000000000000000000320370a8439a22cedf045fa9f1903b2834f26e000002",
                       "8482330010508a0fd959d2e547c6b33154a6be2057",
                       "84e29100187a5ef717eaf1e135ae92fe54429d0e465decda65f5fe5aea00",
                       "ea90dbfa648a67c5eb6abc57f8530b97d0cd5647c5e8732016b55203b078dd2ace7f8bc5d1c1cd99",
                       ("84f2200208bcc5c17275545d93", "84ca00660804806aba9d543bb600",
                        "84f2200218717222491556ec81a45f49ce48be33320024801a1c4cb0e0",
                        "84f2800218561f105bccd3a1642904b251ccc1228beb80a82370a8637000")),
}


@pytest.mark.parametrize("name", sorted(SCP03_SESSIONS))
def test_scp03_session_matches_pysim(name: str) -> None:
    """Session keys by the KDF, card cryptogram check, host cryptogram, C-MAC chaining, C-DECRYPTION with the
    encryption counter (which moves for commands without data too: case 1 precedes the encrypted case 3),
    R-MAC and R-ENCRYPTION."""
    keys, init_cmd, init_rsp, ext_auth, eid_cmd, eid_rsp, cases = SCP03_SESSIONS[name]
    host_challenge = h(init_cmd)[5:13]
    assert initialize_update(keys.kvn, host_challenge).to_bytes() == h(init_cmd)
    response = GPInitializeUpdateResponse.parse(h(init_rsp))
    assert (response.scp, response.i, response.kvn) == (0x03, 0x70, keys.kvn)
    channel = SCP03(keys, host_challenge, response)
    assert channel.external_authenticate(SecurityLevel(h(ext_auth)[2])).to_bytes() == h(ext_auth)
    channel.opened()
    assert channel.wrap(CommandAPDU.from_hex(GET_EID)).to_bytes() == h(eid_cmd)
    assert channel.unwrap(ResponseAPDU(h(eid_rsp), 0x9000)).data == EID
    for plain, wrapped in zip(PLAIN_CASES, cases, strict=True):
        assert channel.wrap(CommandAPDU.from_hex(plain)).to_bytes() == h(wrapped)


@pytest.mark.parametrize("name", sorted(SCP03_SESSIONS))
def test_scp03_a_run_wrapped_at_once_is_each_command_wrapped_in_turn(name: str) -> None:
    """wrap_run (the C-MAC chain at once at C-MAC level, command by command with C-DECRYPTION) gives the
    same commands as wrap, and after each a channel whose next response and command are the sequential ones."""
    keys, init_cmd, init_rsp, ext_auth, eid_cmd, eid_rsp, cases = SCP03_SESSIONS[name]
    channel = SCP03(keys, h(init_cmd)[5:13], GPInitializeUpdateResponse.parse(h(init_rsp)))
    channel.external_authenticate(SecurityLevel(h(ext_auth)[2]))
    channel.opened()
    wrapped = channel.wrap_run([CommandAPDU.from_hex(GET_EID), *map(CommandAPDU.from_hex, PLAIN_CASES)])
    assert [wire.to_bytes() for wire, _ in wrapped] == [h(eid_cmd), *map(h, cases)]
    assert wrapped[0][1].unwrap(ResponseAPDU(h(eid_rsp), 0x9000)).data == EID  # the state after GET EID
    after = wrapped[-1][1]
    assert (after.chaining_value, after.counter) == (channel.chaining_value, channel.counter)
    assert channel.counter == len(cases) + 1
    assert after is not channel  # a copy: the run's channel moves on without it


def test_scp03_tampered_response_mac_is_refused() -> None:
    keys, init_cmd, init_rsp, ext_auth, _, eid_rsp, _ = SCP03_SESSIONS["aes128-level11"]
    channel = SCP03(keys, h(init_cmd)[5:13], GPInitializeUpdateResponse.parse(h(init_rsp)))
    channel.external_authenticate(SecurityLevel(h(ext_auth)[2]))
    channel.opened()
    channel.wrap(CommandAPDU.from_hex(GET_EID))
    tampered = bytearray(h(eid_rsp))
    tampered[0] ^= 1
    with pytest.raises(SecureChannelError, match="R-MAC"):
        channel.unwrap(ResponseAPDU(bytes(tampered), 0x9000))


def test_scp03_wrong_keys_fail_on_the_card_cryptogram() -> None:
    _, init_cmd, init_rsp, *_ = SCP03_SESSIONS["aes128-level11"]
    with pytest.raises(CardCryptogramError, match="SCP03"):
        SCP03(KeySet.single(DEV_KEY, 0x30), h(init_cmd)[5:13], GPInitializeUpdateResponse.parse(h(init_rsp)))


# ---------------------------------------------------------------- SCP03 KDF [omfgp]


def test_scp03_kdf_matches_omfgp() -> None:
    context = h("68E9C8799FF8CB46F8D89D88BA1287BF")
    s_mac = scp03_kdf(DEV_KEY, DERIVE_S_MAC, 128, context)
    assert scp03_kdf(DEV_KEY, DERIVE_S_ENC, 128, context) == h("3C64070C595D1D72BDEE692DA99B7AE4")
    assert s_mac == h("6E8468B74A707842E3D3696F338D2657")
    assert scp03_kdf(DEV_KEY, DERIVE_S_RMAC, 128, context) == h("FDD1D7C84750994815D0082734C31D88")
    assert scp03_kdf(s_mac, DERIVE_CARD_CRYPTOGRAM, 64, context) == h("9B5C9D42D5059430")
    assert scp03_kdf(s_mac, DERIVE_HOST_CRYPTOGRAM, 64, context) == h("F3C7624565B5894F")
    # pseudo-random card challenge: sequence counter || SD AID as context
    challenge_context = h("00002A") + h("A000000018434D08090A0B0C000000")
    assert scp03_kdf(DEV_KEY, DERIVE_CARD_CHALLENGE, 64, challenge_context) == h("A3F5F144D19BE66E")


# ---------------------------------------------------------------- key sets and levels


def test_key_set_never_shows_its_keys() -> None:
    keys = KeySet.single(DEV_KEY, 0x01)
    assert "4041" not in repr(keys) and "4041" not in str(keys)
    assert "kvn=0x01" in repr(keys)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"enc": b"\x00" * 15, "mac": DEV_KEY, "dek": DEV_KEY}, "ENC key must be 16, 24 or 32"),
    ({"enc": DEV_KEY, "mac": DEV_KEY, "dek": DEV_KEY, "kvn": 0x80}, "0..127"),
])
def test_key_set_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KeySet(**kwargs)


def test_levels_that_make_no_sense_are_refused() -> None:
    keys, init_cmd, init_rsp, *_ = SCP03_SESSIONS["aes128-level11"]
    channel = SCP03(keys, h(init_cmd)[5:13], GPInitializeUpdateResponse.parse(h(init_rsp)))
    with pytest.raises(ValueError, match="C-DECRYPTION needs C-MAC"):
        channel.external_authenticate(SecurityLevel.C_DECRYPTION)
    with pytest.raises(SecureChannelError, match="not open"):
        channel.wrap(CommandAPDU(0x80, 0xF2, 0x80, 0x02))


@pytest.mark.parametrize(("level", "room"), [
    (SecurityLevel.C_MAC, 247),
    (SecurityLevel.C_MAC | SecurityLevel.C_DECRYPTION, 239),
])
def test_scp03_block_room(level: SecurityLevel, room: int) -> None:
    keys, init_cmd, init_rsp, *_ = SCP03_SESSIONS["aes128-level11"]
    channel = SCP03(keys, h(init_cmd)[5:13], GPInitializeUpdateResponse.parse(h(init_rsp)))
    channel.external_authenticate(level)
    channel.opened()
    assert channel.max_data() == room
    wrapped = channel.wrap(CommandAPDU(0x80, 0xE8, 0x00, 0x00, bytes(room)))
    assert len(wrapped.to_bytes()) <= 5 + 255


@pytest.mark.parametrize(("plain", "wrapped"), [(0x80, 0x84), (0x83, 0x87), (0xC0, 0xE0), (0xCF, 0xEF), (0x00, 0x04)])
def test_a_wrapped_command_keeps_its_channel_and_flags_secure_messaging(plain: int, wrapped: int) -> None:
    """[GPCS] 11.1.4: on channels 4-19 (C0-CF) the indication is b6; b3 would name another channel."""
    keys, init_cmd, init_rsp, *_ = SCP03_SESSIONS["aes128-level11"]
    for channel in (_scp02(), SCP03(keys, h(init_cmd)[5:13], GPInitializeUpdateResponse.parse(h(init_rsp)))):
        channel.external_authenticate(SecurityLevel.C_MAC)
        channel.opened()
        assert channel.wrap(CommandAPDU(plain, 0xF2, 0x80, 0x02, b"\x4F\x00")).cla == wrapped


# ---------------------------------------------------------------- the shared primitives (cardsuite.crypto)


def test_retail_mac_matches_the_wallet_and_scp02_definitions() -> None:
    """ISO/IEC 9797-1 MAC algorithm 3: single DES CBC under K1 over all but the last block, the last block under
    3DES. Checked against a computation from the single-DES and 3DES primitives directly."""
    from cardsuite.crypto.des import pad_m2, retail_mac, tdes_cbc_encrypt, tdes_ecb

    key, data = h("404142434445464748494A4B4C4D4E4F"), bytes(range(20))
    padded = pad_m2(data)
    chain = bytes(8)
    for i in range(0, len(padded) - 8, 8):
        chain = tdes_ecb(key[:8], bytes(a ^ b for a, b in zip(chain, padded[i:i + 8], strict=True)))
    expected = tdes_ecb(key, bytes(a ^ b for a, b in zip(chain, padded[-8:], strict=True)))
    assert retail_mac(key, data) == expected
    assert tdes_cbc_encrypt(key, padded)[-8:] != expected  # it is not the full 3DES CBC-MAC


@pytest.mark.parametrize("block", [8, 16])
def test_method_2_padding_round_trips_and_refuses_what_it_cannot_have_made(block: int) -> None:
    from cardsuite.crypto.des import PaddingError, pad_m2, unpad_m2

    for length in range(0, 3 * block):
        data = bytes(range(1, length + 1))
        padded = pad_m2(data, block)
        assert len(padded) % block == 0 and unpad_m2(padded, block) == data
    for bad in (bytes(block), b"\x01" * block, b"\x80" + bytes(block)):
        with pytest.raises(PaddingError):
            unpad_m2(bad, block)
