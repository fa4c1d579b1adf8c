"""SCP02 through the KMS token: session keys derived in it (CKM_DES3_CBC_ENCRYPT_DATA), the retail MAC built
from single DES under K1 K1 and 3DES, cryptograms and command encryption by C_Encrypt. The token's results
equal the software channel's (cardsuite.gp.scp) and a published session's; simulated SCP02 cards (i=15 and
i=55) are opened with keys that exist only in SoftHSM2, by the GP client and by the ADS."""

from __future__ import annotations

import dataclasses
import os

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.crypto.des import tdes_ecb
from cardsuite.gp.client import GlobalPlatform
from cardsuite.gp.keys import MasterKeys
from cardsuite.gp.scp import (
    LEVELS,
    SCP02,
    SCP02_C_MAC,
    SCP02_DEK,
    SCP02_ENC,
    SOFTWARE_DES,
    GPInitializeUpdateResponse,
    KeySet,
    SecureChannelError,
    SecurityLevel,
    scp02_session_key,
)
from cardsuite.project import Project
from cardsuite.scms.ads import PostIssuance
from cardsuite.scms.kms import Kms, KmsError, TokenCardKeys, TokenDes, TokenKeySet
from cardsuite.scms.putkey import put_token_keys
from cardsuite.scms.system import TRANSPORT_KEY, KeySetConfig, System
from cardsuite.sim.bridge import DEVELOPMENT_KEY, CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport

from tests.gp.test_gp_scp import SCP02_CASES, SCP02_HOST_CHALLENGE, SCP02_INIT_UPDATE, SCP02_KEYS
from tests.scms.conftest import card_identity

h = bytes.fromhex
TEST_MASTER = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # a test vector, never a real key
TRANSPORT_3DES = "transport-3des"  # the development keys as a two-key 3DES static key (SCP02 cards)
ISO_APPLET = bytes.fromhex("0011223344552001")
EXTERNAL_AUTHENTICATE = h("8482010010BA6961667737C5BCEBECE14C7D6A4376")  # [pySim], i=15 and i=55


def _imported(kms: Kms, label: str, value: bytes, kdf: str | None = None) -> None:
    if kms.find(label) is None:  # one token for the whole test session
        kms.import_key(label, value, kdf, des=True)


def _pysim_keys(kms: Kms) -> TokenCardKeys:
    """The published session's three static keys, as three token keys."""
    for role in ("enc", "mac", "dek"):
        _imported(kms, f"test-scp02-{role}", getattr(SCP02_KEYS, role))
    return TokenCardKeys(kms, "test-scp02", kms.key("test-scp02-enc"), kms.key("test-scp02-mac"),
                         kms.key("test-scp02-dek"), SCP02_KEYS.kvn)


@pytest.mark.parametrize("i", [0x15, 0x55])
def test_a_published_scp02_session_computed_in_the_token(scms: System, i: int) -> None:
    uses: list[tuple[str, str, str]] = []
    with scms.kms(lambda *use: uses.append(use)) as kms:
        keys = _pysim_keys(kms)
        response = GPInitializeUpdateResponse.parse(SCP02_INIT_UPDATE)
        channel = keys.channel(SCP02_HOST_CHALLENGE, response, scp02_i=i)  # the card cryptogram checked
        assert isinstance(channel, SCP02) and isinstance(channel.ops, TokenDes)
        assert channel.external_authenticate(SecurityLevel.C_MAC).to_bytes() == EXTERNAL_AUTHENTICATE
        channel.opened()
        for plain, wrapped in SCP02_CASES:  # the C-MAC chains, the ICV encrypted under K1 in the token
            assert channel.wrap(CommandAPDU.from_hex(plain)).to_bytes() == h(wrapped)
        # and at level enc, the token's channel wraps exactly as the software's
        software = SCP02(SCP02_KEYS, SCP02_HOST_CHALLENGE, response, i=i)
        token = keys.channel(SCP02_HOST_CHALLENGE, response, scp02_i=i)
        for channel in (software, token):
            channel.external_authenticate(LEVELS["enc"])
            channel.opened()
        for plain, _ in SCP02_CASES:
            command = CommandAPDU.from_hex(plain)
            assert token.wrap(command).to_bytes() == software.wrap(command).to_bytes()
    operations = [operation for operation, label, _ in uses if label == "test-scp02"]
    assert operations.count("derive") == 6 and "cryptogram" in operations and "mac" in operations
    assert all(SCP02_KEYS.mac.hex() not in detail.lower() for _, _, detail in uses)


def test_token_des_operations_equal_the_software_ones(scms: System) -> None:
    """Session keys (compared by check values: nothing is read out), the retail MAC with and without an ICV for
    every length from 0 to 33 bytes (block multiples included: padding adds a whole block), ICV encryption,
    the cryptograms' full 3DES MAC, C-DECRYPTION and sensitive data encryption. The software's results are
    computed before each assert, so that a failure's report shows no key bytes (pytest prints the arguments
    of the calls inside an assert)."""
    counter = h("002A")
    with scms.kms() as kms:
        _imported(kms, TRANSPORT_3DES, DEVELOPMENT_KEY)
        static = kms.key(TRANSPORT_3DES)
        ops = TokenDes(kms, TRANSPORT_3DES)
        for constant in (SCP02_ENC, SCP02_C_MAC, SCP02_DEK):
            ours = scp02_session_key(DEVELOPMENT_KEY, constant, counter)
            check, check_k1 = tdes_ecb(ours, bytes(8)), tdes_ecb(ours[:8], bytes(8))
            session = ops.derive(static, constant, counter, mac=True)
            assert kms.check_value(session.key) == check, constant.hex()
            assert kms.check_value(session.k1) == check_k1, constant.hex()  # K1 K1 runs as DES K1
        s_mac = ops.derive(static, SCP02_C_MAC, counter, mac=True)
        s_enc = ops.derive(static, SCP02_ENC, counter)
        sw_mac = SOFTWARE_DES.derive(DEVELOPMENT_KEY, SCP02_C_MAC, counter)
        sw_enc = SOFTWARE_DES.derive(DEVELOPMENT_KEY, SCP02_ENC, counter)
        icv = os.urandom(8)
        for length in range(34):
            data = os.urandom(length)
            for start in (bytes(8), icv):
                ours = SOFTWARE_DES.retail_mac(sw_mac, data, start)
                assert ops.retail_mac(s_mac, data, start) == ours, length
            ours = SOFTWARE_DES.full_mac(sw_enc, data)
            assert ops.full_mac(s_enc, data) == ours, length
        ours = SOFTWARE_DES.encrypt_icv(sw_mac, icv)
        assert ops.encrypt_icv(s_mac, icv) == ours
        blocks = os.urandom(32)
        ours_cbc, ours_ecb = SOFTWARE_DES.cbc(sw_enc, blocks), SOFTWARE_DES.ecb(sw_enc, blocks)
        assert ops.cbc(s_enc, blocks) == ours_cbc
        assert ops.ecb(s_enc, blocks) == ours_ecb
        assert ops.key_length(static) == 16
        with pytest.raises(SecureChannelError, match="is AES: SCP02 needs two-key 3DES keys"):
            ops.key_length(kms.key(TRANSPORT_KEY))


def _scp02_card(project: Project, config: CardManagerConfig) -> SimulatorTransport:
    card = SimulatorTransport(project, applets=[], card_manager=config)
    card.connect()
    return card


@pytest.mark.parametrize("i", [0x15, 0x55])
def test_simulated_scp02_cards_opened_with_token_keys(scms: System, project: Project, i: int) -> None:
    """A card with the development keys (a static 3DES key in the token) at level enc; then, over that channel,
    PUT KEY of the test master's EMV keys (key data 3DES-ECB under the session DEK in the token), and the card
    opened with the token's EMV master, diversified inside it."""
    card = _scp02_card(project, CardManagerConfig("scp02", scp_i=i))
    try:
        with scms.kms() as kms:
            _imported(kms, TRANSPORT_3DES, DEVELOPMENT_KEY)
            _imported(kms, "test-master-emv", TEST_MASTER, "emv")
            gp = GlobalPlatform(card)
            gp.select()
            channel = gp.open_secure_channel(TokenKeySet(kms, TRANSPORT_3DES, None, 1),  # type: ignore[arg-type]
                                             LEVELS["enc"], scp=2)
            assert isinstance(channel.ops, TokenDes) and gp.registry().isd is not None  # type: ignore[attr-defined]
            stored = gp.put_key(MasterKeys.of(TEST_MASTER, "emv", 0x20), replace=1)
            assert stored.kvn == 0x20
            gp.select()
            with pytest.raises(Exception, match="cryptogram"):  # the development keys are gone
                gp.open_secure_channel(KeySet.single(DEVELOPMENT_KEY, 0x20), LEVELS["mac"])
            gp.select()
            gp.open_secure_channel(TokenKeySet(kms, "test-master-emv", "emv", 0x20), LEVELS["enc"])  # type: ignore[arg-type]
            assert gp.registry().isd is not None
    finally:
        card.disconnect()


def test_an_scp02_card_issued_with_emv_keys_is_opened_with_the_token_master(scms: System,
                                                                          project: Project) -> None:
    card = _scp02_card(project, CardManagerConfig("scp02", keys=(TEST_MASTER,) * 3, kdf="emv",
                                                  serial=h("12345678")))
    try:
        with scms.kms() as kms:
            _imported(kms, "test-master-emv", TEST_MASTER, "emv")
            gp = GlobalPlatform(card)
            gp.select()
            gp.open_secure_channel(TokenKeySet(kms, "test-master-emv", "emv", 0), LEVELS["mac"])  # type: ignore[arg-type]
            assert gp.registry().isd is not None
    finally:
        card.disconnect()


def test_a_post_issuance_over_scp02_with_keys_only_in_the_token(scms: System, project: Project) -> None:
    """The ADS's path: its 12 steps, the deployer's LOAD and INSTALL under an SCP02 channel of token keys."""
    with scms.kms() as kms:
        _imported(kms, TRANSPORT_3DES, DEVELOPMENT_KEY)
    system = dataclasses.replace(scms, card_keys=KeySetConfig(TRANSPORT_3DES, None, 0))
    card = _scp02_card(project, CardManagerConfig("scp02"))
    try:
        cin = card_identity(card)
        db = system.database()
        db.upsert_card(cin, "SECURED")
        request = db.new_request("test-terminal", "install", "isoapplet")
        got, outcome = PostIssuance(system, db, project, request).run(card)
        assert got == cin and db.request(request).state == "done", outcome  # type: ignore[union-attr]
        assert card.select(ISO_APPLET).sw == 0x9000  # installed for real
        audit = db.query("SELECT operation, detail FROM scms_audit WHERE request_id = ? AND key_label = ?",
                         (request, TRANSPORT_3DES))
        operations = {operation for operation, _ in audit}
        assert {"use", "derive", "cryptogram", "mac"} <= operations, operations
        assert all(DEVELOPMENT_KEY.hex() not in (detail or "").lower() for _, detail in audit)
        commands = [command for _, command, _, _ in db.exchanges(request)]
        assert any(c.startswith("80 50") for c in commands) and any(c.startswith("84 82") for c in commands)
        assert any(c.startswith("84 E8") for c in commands)  # LOAD under C-MAC
    finally:
        card.disconnect()


def test_put_key_of_token_keys_over_scp02_is_refused_in_one_line(scms: System, project: Project) -> None:
    """SoftHSM2 has no 3DES C_WrapKey: token keys cannot be put on an SCP02 card through it. Refused before
    PUT KEY is sent: the card keeps its keys."""
    card = _scp02_card(project, CardManagerConfig("scp02"))
    try:
        with scms.kms() as kms:
            _imported(kms, TRANSPORT_3DES, DEVELOPMENT_KEY)
            _imported(kms, "test-master-emv", TEST_MASTER, "emv")
            gp = GlobalPlatform(card)
            gp.select()
            channel = gp.open_secure_channel(TokenKeySet(kms, TRANSPORT_3DES, None, 1), LEVELS["mac"])  # type: ignore[arg-type]
            new = kms.derive_card_keys("test-master-emv", "emv", channel.response.key_diversification_data,
                                       wrappable=True)
            keys = TokenCardKeys(kms, "test-master-emv", new["enc"], new["mac"], new["dek"], 0x20)
            with pytest.raises(KmsError, match=r"^PUT KEY of token keys over SCP02 needs C_WrapKey with "
                                               r"CKM_DES3_ECB .*lacks$"):
                put_token_keys(gp, kms, keys, 0x20, 1)
        gp.select()
        gp.open_secure_channel(KeySet.single(DEVELOPMENT_KEY, 1), LEVELS["mac"])  # nothing was replaced
    finally:
        card.disconnect()


def test_a_rotation_of_an_scp02_card_is_refused_before_the_write_ahead(scms: System, project: Project) -> None:
    """The ADS's rotate of an SCP02 card to an EMV master: refused by the token's missing 3DES wrap while the
    command is built, so the card's record stays 'transport' (not 'rotating') and its keys are its own."""
    with scms.kms() as kms:
        _imported(kms, TRANSPORT_3DES, DEVELOPMENT_KEY)
        _imported(kms, "test-master-emv", TEST_MASTER, "emv")
    system = dataclasses.replace(scms, card_keys=KeySetConfig(TRANSPORT_3DES, None, 0),
                                 issuer_keys=KeySetConfig("test-master-emv", "emv", 0x20))
    card = _scp02_card(project, CardManagerConfig("scp02"))
    try:
        cin = card_identity(card)
        db = system.database()
        db.upsert_card(cin, "SECURED")
        request = db.new_request("test-terminal", "rotate", "")
        with pytest.raises(KmsError, match="needs C_WrapKey with CKM_DES3_ECB"):
            PostIssuance(system, db, project, request).run(card)
        assert db.card(cin).key_set == "transport"  # type: ignore[union-attr]
        assert "CKM_DES3_ECB" in (db.request(request).reason or "")  # type: ignore[union-attr]
        assert not any(c.startswith("84 D8") for _, c, _, _ in db.exchanges(request))  # no PUT KEY sent
        gp = GlobalPlatform(card)
        gp.select()
        gp.open_secure_channel(KeySet.single(DEVELOPMENT_KEY, 1), LEVELS["mac"])
    finally:
        card.disconnect()
