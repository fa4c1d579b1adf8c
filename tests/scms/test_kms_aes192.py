"""AES-192 keys in a key rotation through the KMS token: PUT KEY of a 24-byte key wraps two AES blocks, the
key and 8 bytes of padding made in the token (Kms.wrap), under an AES-192 DEK; the card then opens with
exactly the issuer master's KDF3 keys."""

from __future__ import annotations

import dataclasses

import pytest
from cardsuite.crypto.aes import aes_cbc
from cardsuite.gp.client import GlobalPlatform
from cardsuite.gp.keys import MasterKeys, diversify_kdf3
from cardsuite.gp.scp import LEVELS, CardCryptogramError
from cardsuite.project import Project
from cardsuite.scms.ads import PostIssuance
from cardsuite.scms.kms import Kms, KmsError
from cardsuite.scms.system import KeySetConfig, System
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.sim.inprocess import SimulatorTransport

from tests.scms.conftest import card_identity

h = bytes.fromhex
# test vectors, never real keys
CARD_MASTER = h("0123456789ABCDEFFEDCBA9876543210" "0011223344556677")  # the card's issuer (transport) master
ISSUER_MASTER_192 = h("00112233445566778899AABBCCDDEEFF" "8899AABBCCDDEEFF")  # what the rotation puts
KDD = h("00010203040506070809")
ISO_APPLET = bytes.fromhex("0011223344552001")


def _imported(kms: Kms, label: str, value: bytes) -> None:
    if kms.find(label) is None:
        kms.import_key(label, value, "kdf3")


def test_an_aes192_key_is_wrapped_as_the_key_and_token_made_padding(scms: System) -> None:
    """The wrapped block decrypts (under the software DEK) to the software KDF3 key and 8 more bytes, which differ
    per key; a 24-byte key that was not derived for wrapping is refused in one line."""
    with scms.kms() as kms:
        _imported(kms, "test-master-kdf3-192", CARD_MASTER)
        _imported(kms, "test-issuer-kdf3-192", ISSUER_MASTER_192)
        dek = kms.derive_card_keys("test-master-kdf3-192", "kdf3", KDD)["dek"]
        new = kms.derive_card_keys("test-issuer-kdf3-192", "kdf3", KDD, wrappable=True)
        ours_dek = diversify_kdf3(CARD_MASTER, KDD).dek
        ours = diversify_kdf3(ISSUER_MASTER_192, KDD)
        paddings = []
        for role in ("enc", "mac", "dek"):
            wrapped = kms.wrap(dek, new[role], "test-issuer-kdf3-192")
            assert len(wrapped) == 32
            plain = aes_cbc(ours_dek, wrapped, bytes(16), decrypt=True)
            is_the_key = plain[:24] == getattr(ours, role)  # a bool: a failure's report shows no key bytes
            assert is_the_key, role
            paddings.append(plain[24:])
        distinct = len(set(paddings))
        assert distinct == 3  # padding differs per key
        not_for_wrapping = kms.derive_card_keys("test-issuer-kdf3-192", "kdf3", KDD)["enc"]
        with pytest.raises(KmsError, match=r"^key test-issuer-kdf3-192: an AES-192 key is wrapped padded, and only "
                                           r"card keys derived here for wrapping .* have a padded form$"):
            kms.wrap(dek, not_for_wrapping, "test-issuer-kdf3-192")


def test_rotation_to_aes192_keys_under_an_aes192_dek_through_the_token(scms: System, project: Project) -> None:
    """A card issued with AES-192 KDF3 keys is rotated by the ADS to another AES-192 master's keys (PUT KEY
    wrapped in the token under the card's AES-192 DEK); the card then opens with the new keys, in software and
    through the token (an install by the next request), and no longer with the old."""
    with scms.kms() as kms:
        _imported(kms, "test-master-kdf3-192", CARD_MASTER)
        _imported(kms, "test-issuer-kdf3-192", ISSUER_MASTER_192)
    system = dataclasses.replace(scms, card_keys=KeySetConfig("test-master-kdf3-192", "kdf3", 0),
                                 issuer_keys=KeySetConfig("test-issuer-kdf3-192", "kdf3", 0x31))
    card = SimulatorTransport(project, applets=[], card_manager=CardManagerConfig(
        "scp03", keys=(CARD_MASTER,) * 3, kdf="kdf3", serial=h("12345678")))
    card.connect()
    try:
        cin = card_identity(card)
        db = system.database()
        db.upsert_card(cin, "SECURED")
        request = db.new_request("test-terminal", "rotate", "")
        _, outcome = PostIssuance(system, db, project, request).run(card)
        assert "-> 0x31" in outcome and db.card(cin).key_set == "issuer", outcome  # type: ignore[union-attr]
        audit = db.query("SELECT operation FROM scms_audit WHERE request_id = ? AND key_label = ?",
                         (request, "test-issuer-kdf3-192"))
        assert audit.count(("wrap",)) == 3
        gp = GlobalPlatform(card)
        gp.select()
        gp.open_secure_channel(MasterKeys.of(ISSUER_MASTER_192, "kdf3", 0x31), LEVELS["enc"])
        assert gp.registry().isd is not None
        gp.select()
        with pytest.raises(CardCryptogramError):
            gp.open_secure_channel(MasterKeys.of(CARD_MASTER, "kdf3", 0x31), LEVELS["mac"])
        request = db.new_request("test-terminal", "install", "isoapplet")
        PostIssuance(system, db, project, request).run(card)
        assert card.select(ISO_APPLET).sw == 0x9000
    finally:
        card.disconnect()
