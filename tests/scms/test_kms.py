"""The KMS's token: card keys diversified inside it equal cardsuite.gp.keys's for a test master imported as
such (compared by full-block check values: nothing is read out), masters not extractable, every use audited,
and a card whose keys are KDF3-diversified opened with the token's master."""

from __future__ import annotations

import pytest
from cardsuite.crypto.aes import aes_ecb
from cardsuite.crypto.des import tdes_ecb
from cardsuite.gp.client import GlobalPlatform
from cardsuite.gp.keys import DIVERSIFICATIONS, MasterKeys
from cardsuite.gp.scp import LEVELS, KeySet
from cardsuite.project import Project
from cardsuite.scms.kms import KmsError, TokenKeySet
from cardsuite.scms.system import ISSUER_MASTER, System
from cardsuite.sim.bridge import DEVELOPMENT_KEY, CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport

TEST_MASTER = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # a test vector, never a real key
KDD = bytes.fromhex("00010203040506070809")


@pytest.mark.parametrize("kdf", sorted(DIVERSIFICATIONS))
def test_token_diversification_equals_gp_keys(scms: System, kdf: str) -> None:
    uses: list[tuple[str, str, str]] = []
    with scms.kms(lambda *use: uses.append(use)) as kms:
        label = f"test-master-{kdf}"
        if kms.find(label) is None:
            kms.import_key(label, TEST_MASTER, kdf)
        derived = kms.derive_card_keys(label, kdf, KDD)
        expected = DIVERSIFICATIONS[kdf](TEST_MASTER, KDD)
        for role in ("enc", "mac", "dek"):
            key = getattr(expected, role)
            check = aes_ecb(key, bytes([1]) * 16) if kdf == "kdf3" else tdes_ecb(key, bytes(8))
            assert kms.check_value(derived[role]) == check, role
        # a different KDD gives different keys
        other = kms.derive_card_keys(label, kdf, bytes(10))
        assert kms.check_value(other["enc"]) != kms.check_value(derived["enc"])
    assert ("derive", label, f"{kdf} card keys for KDD 00010203..") in uses


def test_the_master_never_leaves_the_token(scms: System) -> None:
    import pkcs11

    with scms.kms() as kms:
        master = kms.key(ISSUER_MASTER)
        assert master[pkcs11.Attribute.EXTRACTABLE] is False
        assert master[pkcs11.Attribute.SENSITIVE] is True
        assert master[pkcs11.Attribute.ENCRYPT] is False  # only DERIVE: no cipher output under the master
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            master[pkcs11.Attribute.VALUE]
        with pytest.raises(KmsError, match="already holds"):
            kms.generate_master(ISSUER_MASTER, "kdf3")


def test_a_kdf3_card_opened_with_the_token_master(scms: System, project: Project) -> None:
    with scms.kms() as kms:
        label = "test-master-kdf3"
        if kms.find(label) is None:
            kms.import_key(label, TEST_MASTER, "kdf3")
        card = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig("scp03"))
        card.connect()
        try:
            gp = GlobalPlatform(card)
            gp.select()  # the card's keys become the test master's KDF3 diversification (PUT KEY in software)
            gp.open_secure_channel(KeySet.single(DEVELOPMENT_KEY, 1), LEVELS["mac"])
            gp.put_key(MasterKeys.of(TEST_MASTER, "kdf3", 0x30), replace=1)
            gp.select()
            gp.open_secure_channel(TokenKeySet(kms, label, "kdf3", 0x30), LEVELS["enc"])  # type: ignore[arg-type]
            assert gp.registry().isd is not None  # GET STATUS under C-MAC and C-DECRYPTION, through the token
        finally:
            card.disconnect()
