"""One key profile, one policy: `cardsuite gp --key-profile` and `cardsuite deploy` (a card profile's `keys`)
read a key profile with the same parser, so the same file is accepted or refused the same way by both; keys
come from the environment or a key file the profile names, never from the profile itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cardsuite.cli.main import main
from cardsuite.deploy.profiles import load_card_profile
from cardsuite.errors import ConfigurationError
from cardsuite.gp.keys import KeyChoice, resolve_keys

KEY_A = "00112233445566778899AABBCCDDEEFF"
KEY_B = "FFEEDDCCBBAA99887766554433221100"
ENV = {"SHOP_KEY": KEY_A, "SHOP_MAC": KEY_B}

PROFILES = {
    "literal": (f'[keys]\nkey = "{KEY_A}"\n', "keys.key holds a key value"),
    "literal beside a reference": (f'[keys]\nenc = "env:SHOP_KEY"\nmac = "{KEY_B}"\ndek = "env:SHOP_KEY"\n',
                                   "keys.mac holds a key value"),
    "test key without development": ('[keys]\nkey = "404142434445464748494A4B4C4D4E4F"\n', "holds a key value"),
    "unset variable": ('[keys]\nkey = "env:NOT_SET_ANYWHERE"\n', "NOT_SET_ANYWHERE, which is not set"),
    "readable key file": ('[keys]\nkey = "file:open.key"\n', "readable by others: chmod 600"),
    "not a reference": ('[keys]\nkey = "vault:shop"\n', "holds a key value"),
    "no keys": ("kvn = 1\n", "no keys"),
    "environment": ('kvn = 0x30\n[keys]\nenc = "env:SHOP_KEY"\nmac = "env:SHOP_MAC"\ndek = "env:SHOP_KEY"\n', None),
    "key file": ('scp = 3\n[keys]\nkey = "file:private.key"\n', None),
    "development": ('development = true\nkvn = 0\n[keys]\nkey = "404142434445464748494A4B4C4D4E4F"\n', None),
}


def _files(tmp_path: Path, text: str) -> Path:
    for name, mode in (("private.key", 0o600), ("open.key", 0o644)):
        (tmp_path / name).write_text(KEY_B + "\n")
        os.chmod(tmp_path / name, mode)
    profile = tmp_path / "keys.toml"
    profile.write_text(text)
    (tmp_path / "card.toml").write_text('type = "simulated"\nkeys = "keys.toml"\npackages = ["isofs"]\n')
    return profile


def _through_gp(profile: Path) -> KeyChoice | str:
    try:
        return resolve_keys(profile=profile, env=ENV)
    except ConfigurationError as exc:
        return str(exc)


def _through_deploy(card: Path) -> KeyChoice | str:
    try:
        return load_card_profile(card).keys.resolve(ENV)
    except ConfigurationError as exc:
        return str(exc)


@pytest.mark.parametrize("case", PROFILES)
def test_gp_and_deploy_judge_a_key_profile_alike(tmp_path: Path, case: str) -> None:
    text, refusal = PROFILES[case]
    profile = _files(tmp_path, text)
    by_gp, by_deploy = _through_gp(profile), _through_deploy(tmp_path / "card.toml")
    if refusal is None:
        assert isinstance(by_gp, KeyChoice) and isinstance(by_deploy, KeyChoice), (by_gp, by_deploy)
        assert (by_gp.keys, by_gp.scp) == (by_deploy.keys, by_deploy.scp)
    else:
        assert isinstance(by_gp, str) and isinstance(by_deploy, str), (by_gp, by_deploy)
        assert refusal in by_gp and by_gp == by_deploy
        assert KEY_A not in by_gp and KEY_B not in by_gp


def test_the_keys_are_the_ones_named(tmp_path: Path) -> None:
    keys = _through_gp(_files(tmp_path, PROFILES["environment"][0]))
    assert isinstance(keys, KeyChoice)
    assert (keys.keys.enc, keys.keys.mac, keys.keys.kvn) == (bytes.fromhex(KEY_A), bytes.fromhex(KEY_B), 0x30)
    from_file = _through_gp(_files(tmp_path, PROFILES["key file"][0]))
    assert isinstance(from_file, KeyChoice) and from_file.keys.dek == bytes.fromhex(KEY_B) and from_file.scp == 3


def test_both_commands_refuse_a_literal_key_with_the_same_line(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    profile = _files(tmp_path, PROFILES["literal"][0])
    assert main(["gp", "list", "--card", "sim", "--key-profile", str(profile),
                 "--guard-db", str(tmp_path / "guard.db")]) == 1
    by_gp = capsys.readouterr().err.strip().splitlines()[-1]
    assert main(["deploy", str(tmp_path / "card.toml"), "--card", "sim", "--plan",
                 "--db", f"sqlite:///{tmp_path / 'i.db'}"]) == 1
    by_deploy = capsys.readouterr().err.strip().splitlines()[-1]
    assert by_gp == by_deploy and by_gp.startswith("Error: key profile ") and "holds a key value" in by_gp
    assert KEY_A not in by_gp
