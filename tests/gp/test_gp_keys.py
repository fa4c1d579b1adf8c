"""Where GlobalPlatform keys come from (cardsuite.gp.keys): the environment or a key profile naming variables
and key files, the development keys only when asked, and two sources at once refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cardsuite.errors import ConfigurationError
from cardsuite.gp.keys import DEVELOPMENT_KEY, resolve_keys

KEY_A = "00112233445566778899AABBCCDDEEFF"
KEY_B = "FFEEDDCCBBAA99887766554433221100"


def test_no_keys_is_an_error_naming_every_way() -> None:
    with pytest.raises(ConfigurationError, match="CARDSUITE_GP_KEY.*--key-profile.*--dev-keys"):
        resolve_keys(env={})


def test_development_keys_only_when_asked() -> None:
    choice = resolve_keys(dev_keys=True, env={})
    assert choice.keys.enc == DEVELOPMENT_KEY == bytes.fromhex("404142434445464748494A4B4C4D4E4F")
    assert "--dev-keys" in choice.source


def test_single_key_and_version_from_the_environment() -> None:
    choice = resolve_keys(env={"CARDSUITE_GP_KEY": KEY_A, "CARDSUITE_GP_KVN": "0x30"})
    assert (choice.keys.enc, choice.keys.mac, choice.keys.dek) == (bytes.fromhex(KEY_A),) * 3
    assert choice.keys.kvn == 0x30
    assert resolve_keys(kvn=0x31, env={"CARDSUITE_GP_KEY": KEY_A}).keys.kvn == 0x31


def test_three_keys_from_the_environment() -> None:
    env = {"CARDSUITE_GP_KEY_ENC": KEY_A, "CARDSUITE_GP_KEY_MAC": KEY_B, "CARDSUITE_GP_KEY_DEK": KEY_A}
    keys = resolve_keys(env=env).keys
    assert keys.mac == bytes.fromhex(KEY_B) and keys.enc == bytes.fromhex(KEY_A)


@pytest.mark.parametrize(("env", "message"), [
    ({"CARDSUITE_GP_KEY_ENC": KEY_A}, "missing CARDSUITE_GP_KEY_MAC, CARDSUITE_GP_KEY_DEK"),
    ({"CARDSUITE_GP_KEY": KEY_A, "CARDSUITE_GP_KEY_ENC": KEY_A}, "not both"),
    ({"CARDSUITE_GP_KEY": "4041"}, "16, 24 or 32 bytes, got 2"),
    ({"CARDSUITE_GP_KEY": "zz"}, "CARDSUITE_GP_KEY is not hex"),
    ({"CARDSUITE_GP_KEY": KEY_A, "CARDSUITE_GP_KVN": "200"}, "0..127"),
])
def test_bad_environment(env: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        resolve_keys(env=env)


def test_two_sources_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="keys given twice"):
        resolve_keys(dev_keys=True, env={"CARDSUITE_GP_KEY": KEY_A})


def test_key_profile_with_key_files_and_environment_keys(tmp_path: Path) -> None:
    for name, text in (("enc.key", KEY_A + "\n"), ("dek.key", KEY_A)):
        (tmp_path / name).write_text(text)
        os.chmod(tmp_path / name, 0o600)
    profile = tmp_path / "keys.toml"
    profile.write_text('kvn = 0x30\nscp = 3\n[keys]\nenc = "file:enc.key"\nmac = "env:SHOP_MAC"\n'
                       f'dek = "file:{tmp_path / "dek.key"}"\n')
    choice = resolve_keys(profile=profile, env={"SHOP_MAC": KEY_B})
    assert choice.keys.kvn == 0x30 and choice.scp == 3 and choice.keys.mac == bytes.fromhex(KEY_B)
    assert choice.keys.enc == choice.keys.dek == bytes.fromhex(KEY_A)
    assert str(profile) in choice.source
    via_env = resolve_keys(env={"CARDSUITE_GP_KEY_PROFILE": str(profile), "SHOP_MAC": KEY_B})
    assert via_env.keys == choice.keys


def test_a_key_value_in_a_profile_is_refused(tmp_path: Path) -> None:
    """One policy with deploy (tests/deploy/test_key_profiles.py): a profile may be committed, so it names
    where keys are and never holds one; this profile was accepted by `cardsuite gp` before."""
    profile = tmp_path / "keys.toml"
    profile.write_text(f'[keys]\nkey = "{KEY_A}"\n')
    os.chmod(profile, 0o600)
    with pytest.raises(ConfigurationError, match="keys.key holds a key value") as refused:
        resolve_keys(profile=profile, env={})
    assert KEY_A not in str(refused.value)


def test_development_profile_is_the_explicit_request(tmp_path: Path) -> None:
    profile = tmp_path / "dev.toml"
    profile.write_text("development = true\nkvn = 1\n")
    choice = resolve_keys(profile=profile, env={})
    assert choice.keys.enc == DEVELOPMENT_KEY and choice.keys.kvn == 1 and "development" in choice.source


@pytest.mark.parametrize(("text", "message"), [
    ("kvn = 1\n", "no \\[keys\\] table"),
    ('[keys]\nkey = "env:NOPE"\n', "NOPE, which is not set"),
    (f'[keys]\nkey = "{KEY_A}"\nenc = "{KEY_A}"\n', "not both"),
    (f'[keys]\nenc = "{KEY_A}"\n', "lacks mac, dek"),
    (f'[keys]\nkee = "{KEY_A}"\n', "unknown entries kee"),
    (f'scp = 1\n[keys]\nkey = "{KEY_A}"\n', "scp .* must be 2 or 3"),
    ("[keys\n", "not valid TOML"),
])
def test_bad_key_profiles(tmp_path: Path, text: str, message: str) -> None:
    profile = tmp_path / "keys.toml"
    profile.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        resolve_keys(profile=profile, env={})


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "card.key"
    key_file.write_text(KEY_A)
    os.chmod(key_file, 0o644)
    profile = tmp_path / "keys.toml"
    profile.write_text('[keys]\nkey = "file:card.key"\n')
    with pytest.raises(ConfigurationError, match="readable by others: chmod 600") as refused:
        resolve_keys(profile=profile, env={})
    assert KEY_A not in str(refused.value)
    os.chmod(key_file, 0o600)
    assert resolve_keys(profile=profile, env={}).keys.enc == bytes.fromhex(KEY_A)
    (tmp_path / "short.key").write_text("4041")
    os.chmod(tmp_path / "short.key", 0o600)
    profile.write_text('[keys]\nkey = "file:short.key"\n')
    with pytest.raises(ConfigurationError, match="16, 24 or 32 bytes, got 2"):
        resolve_keys(profile=profile, env={})
