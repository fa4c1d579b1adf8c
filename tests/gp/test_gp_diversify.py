"""Key diversification (cardsuite.gp.keys): EMV CPG 2.1, VISA2 and KDF3 from a master key and the card's key
diversification data, and a key profile that names a master key.

The derivations are written from their definitions (EMV CPG 2.1 5.4.2; VISA2's KDD bytes; SP 800-108 counter
mode with AES-CMAC for KDF3). The known answers are GlobalPlatformPro's own (its library tests at v26.02.11,
TestPlaintextKeys: master 40..4F, KDD 00..09, the KCV of each derived key; and the external KDF3 vector there),
so a card whose keys gp.jar's --key-kdf opens is opened by ours."""

from __future__ import annotations

from pathlib import Path

import pytest
from cardsuite.errors import ConfigurationError
from cardsuite.gp.guard import key_fingerprint
from cardsuite.gp.keys import MasterKeys, diversify_emv, diversify_kdf3, diversify_visa2, load_key_profile
from cardsuite.gp.scp import KeySet, kcv

h = bytes.fromhex
MASTER_16 = bytes(range(0x40, 0x50))
MASTER_24 = bytes(range(0x40, 0x58))
MASTER_32 = bytes(range(0x40, 0x60))
KDD = bytes(range(10))


def _kcvs(keys: KeySet, aes: bool) -> tuple[str, str, str]:
    return tuple(kcv(k, aes).hex().upper() for k in (keys.enc, keys.mac, keys.dek))  # type: ignore[return-value]


@pytest.mark.parametrize(("derive", "master", "aes", "expected"), [
    (diversify_emv, MASTER_16, False, ("C33013", "6F4CA6", "BB8179")),
    (diversify_visa2, MASTER_16, False, ("2BE598", "58DA38", "3C328E")),
    (diversify_kdf3, MASTER_16, True, ("E79C05", "D1BD77", "3FDE8C")),
    (diversify_kdf3, MASTER_24, True, ("1DE8EA", "47C00C", "C04D76")),
    (diversify_kdf3, MASTER_32, True, ("2972D2", "036F94", "5D57B8")),
], ids=["emv", "visa2", "kdf3-128", "kdf3-192", "kdf3-256"])
def test_known_answers(derive, master: bytes, aes: bool, expected: tuple[str, str, str]) -> None:
    keys = derive(master, KDD, 0x30)
    assert _kcvs(keys, aes) == expected and keys.kvn == 0x30
    assert len(keys.enc) == len(master)


def test_kdf3_external_vector() -> None:
    master = h("8C72C72CF908411653018807950D82FBAD947562F0828A0B10B8B9606ABF3BCD")
    keys = diversify_kdf3(master, h("D9B1DE5D0362DEDCE4FB"))
    assert keys.enc == h("9AAC5D0B3601F89438A0D9D0B6B256CFB47E6462DFA5228D3420C4AC7C224781")


def test_emv_and_visa2_read_different_kdd_bytes() -> None:
    """EMV uses KDD bytes 4..9, VISA2 bytes 0..1 and 4..7: changing byte 2 changes neither, byte 9 only EMV,
    byte 0 only VISA2."""
    base = bytearray(KDD)
    for index, emv_changes, visa2_changes in ((2, False, False), (9, True, False), (0, False, True)):
        other = bytearray(base)
        other[index] ^= 0xFF
        assert (diversify_emv(MASTER_16, bytes(other)).enc != diversify_emv(MASTER_16, KDD).enc) is emv_changes
        assert (diversify_visa2(MASTER_16, bytes(other)).enc != diversify_visa2(MASTER_16, KDD).enc) is visa2_changes


def test_bad_inputs() -> None:
    with pytest.raises(ConfigurationError, match="10 bytes, got 8"):
        diversify_emv(MASTER_16, bytes(8))
    with pytest.raises(ConfigurationError, match="16 bytes, got 32 .AES keys: kdf3"):
        diversify_emv(MASTER_32, KDD)
    with pytest.raises(ConfigurationError, match="valid are emv, visa2, kdf3"):
        MasterKeys.of(MASTER_16, "visa1")


def test_master_keys_derive_per_card_and_are_told_apart_by_the_guard() -> None:
    master = MasterKeys.of(MASTER_16, "emv", 0x20)
    assert master.for_card(KDD) == diversify_emv(MASTER_16, KDD, 0x20)
    assert KeySet.single(MASTER_16, 0x20).for_card(KDD) == KeySet.single(MASTER_16, 0x20)
    assert key_fingerprint(master) != key_fingerprint(KeySet.single(MASTER_16, 0x20))
    assert key_fingerprint(master) != key_fingerprint(MasterKeys.of(MASTER_16, "visa2", 0x20))
    assert MASTER_16.hex() not in repr(master).lower() and "kdf=emv" in repr(master)


def test_a_key_profile_names_a_master_key(tmp_path: Path) -> None:
    profile = tmp_path / "issued.toml"
    profile.write_text('kvn = 0x20\nkdf = "visa2"\n[keys]\nmaster = "env:SHOP_MASTER"\n')
    keys = load_key_profile(profile).resolve({"SHOP_MASTER": MASTER_16.hex()}).keys
    assert isinstance(keys, MasterKeys) and keys.kdf == "visa2" and keys.kvn == 0x20
    assert keys.for_card(KDD) == diversify_visa2(MASTER_16, KDD, 0x20)


@pytest.mark.parametrize(("text", "message"), [
    ('kdf = "emv"\n[keys]\nkey = "env:K"\n', "kdf .* and \\[keys\\] master together"),
    ('[keys]\nmaster = "env:K"\n', "kdf .* and \\[keys\\] master together"),
    ('kdf = "sha1"\n[keys]\nmaster = "env:K"\n', "kdf must be one of emv, visa2, kdf3"),
    ('kdf = "emv"\n[keys]\nmaster = "env:K"\nenc = "env:E"\n', "holds only master"),
])
def test_bad_diversified_profiles(tmp_path: Path, text: str, message: str) -> None:
    profile = tmp_path / "bad.toml"
    profile.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        load_key_profile(profile)
