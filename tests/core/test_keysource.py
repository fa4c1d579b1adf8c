"""One secret policy (cardsuite.keysource), used by the GlobalPlatform keys, the issuer's master secret, the
transport keys, PINs and the simulated card manager: exactly one source, an error naming what is missing and
how to give it, the development values only by name, and never a value in a message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cardsuite.errors import ConfigurationError
from cardsuite.keysource import (
    DevelopmentSource,
    EnvironmentSource,
    KeyFileSource,
    KeySource,
    MissingSecret,
    Offer,
    one_source,
    parse_key_list,
    reference,
)
from cardsuite.settings import ENV_ISSUER_KEY_FILE, ENV_ISSUER_SECRET, ENV_SIM_KEYS, ENV_TRANSPORT_KEYS
from cardsuite.sim.bridge import simulator_keys
from cardsuite.wallet.issuer import IssuerSecret, load_transport_keys

KEY = "00112233445566778899AABBCCDDEEFF"
SECRET = "0f" * 32


def _private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_exactly_one_source() -> None:
    env = Offer("$A", EnvironmentSource({"A": KEY}))
    dev = Offer("--dev-keys", DevelopmentSource({"A": b"dev"}))
    assert one_source("shop key", [None, env, None], how="set A").source.get("A") == bytes.fromhex(KEY)
    with pytest.raises(ConfigurationError, match=r"^shop key given twice: \$A and --dev-keys both given; use one"):
        one_source("shop key", [env, dev], how="set A")
    with pytest.raises(MissingSecret, match="^no shop key: set A or pass --dev-keys$"):
        one_source("shop key", [None, None], how="set A or pass --dev-keys")


def test_every_source_is_a_key_source(tmp_path: Path) -> None:
    sources: list[KeySource] = [EnvironmentSource({"A": KEY}), KeyFileSource(_private(tmp_path / "k", KEY)),
                                DevelopmentSource({"A": bytes.fromhex(KEY)})]
    assert {source.get("A") for source in sources} == {bytes.fromhex(KEY)}
    assert all(KEY not in source.describe("A") for source in sources)


def test_environment_names_the_missing_variable_and_hides_the_value() -> None:
    with pytest.raises(MissingSecret, match="the shop key comes from the environment variable SHOP, which is not set"):
        EnvironmentSource({}).text("SHOP", "the shop key")
    with pytest.raises(ConfigurationError, match=r"^\$SHOP is not hex \(the value is not shown\)$"):
        EnvironmentSource({"SHOP": "zz" + KEY}).get("SHOP")


def test_a_key_file_is_hex_or_raw_and_private(tmp_path: Path) -> None:
    assert KeyFileSource(_private(tmp_path / "hex", KEY + "\n")).get() == bytes.fromhex(KEY)
    raw = bytes(range(0xE0, 0xF0))
    (tmp_path / "raw").write_bytes(raw)
    os.chmod(tmp_path / "raw", 0o600)
    assert KeyFileSource(tmp_path / "raw").get() == raw
    with pytest.raises(ConfigurationError, match="readable by others: chmod 600") as refused:
        KeyFileSource(_private(tmp_path / "open", KEY, 0o640)).get()
    assert KEY not in str(refused.value)
    with pytest.raises(MissingSecret, match="cannot read the key file .*gone"):
        KeyFileSource(tmp_path / "gone").get()


def test_a_profile_reference_is_env_or_file_never_a_value(tmp_path: Path) -> None:
    source, name = reference("env:SHOP", "keys.key", tmp_path, {"SHOP": KEY})
    assert source.get(name) == bytes.fromhex(KEY)
    _private(tmp_path / "card.key", KEY)
    source, name = reference("file:card.key", "keys.key", tmp_path)
    assert source.get(name) == bytes.fromhex(KEY)
    for value in (KEY, "env:", "vault:x"):
        with pytest.raises(ConfigurationError, match="must be \"env:NAME\" or \"file:PATH\""):
            reference(value, "keys.key", tmp_path)


def test_key_lists() -> None:
    assert parse_key_list(KEY, "$K", 3) == (bytes.fromhex(KEY),) * 3
    assert parse_key_list(f"{KEY}:{'11' * 16}:{'22' * 24}", "$K", 3)[2] == bytes([0x22]) * 24
    for text, message in ((f"{KEY}:{KEY}", "holds 2 keys"), ("4041", r"key 1\) must be 16, 24 or 32 bytes"),
                          (f"{KEY}:zz:{KEY}", r"\(key 2\) is not hex \(the value is not shown\)")):
        with pytest.raises(ConfigurationError, match=message) as refused:
            parse_key_list(text, "$K", 3)
        assert KEY not in str(refused.value)


# ---------------------------------------------------------------- the users of the policy


def test_the_issuer_secret_from_two_sources_is_refused(tmp_path: Path) -> None:
    """Before: a key file silently won over $CARDSUITE_ISSUER_SECRET."""
    key_file = _private(tmp_path / "issuer.key", SECRET)
    with pytest.raises(ConfigurationError, match=f"given twice: --issuer-key-file and \\${ENV_ISSUER_SECRET}"):
        IssuerSecret.load(environ={ENV_ISSUER_SECRET: "ab" * 32}, key_file=key_file)
    with pytest.raises(ConfigurationError, match="given twice"):
        IssuerSecret.load(environ={ENV_ISSUER_SECRET: "ab" * 32, ENV_ISSUER_KEY_FILE: str(key_file)})


def test_the_key_file_option_overrides_its_own_variable(tmp_path: Path) -> None:
    chosen = _private(tmp_path / "chosen.key", SECRET)
    other = _private(tmp_path / "other.key", "ab" * 32)
    secret = IssuerSecret.load(environ={ENV_ISSUER_KEY_FILE: str(other)}, key_file=chosen)
    assert secret.check_value == IssuerSecret(bytes.fromhex(SECRET), "x").check_value
    assert str(chosen) in secret.source


def test_transport_keys_from_two_sources_are_refused(project) -> None:
    """Before: $CARDSUITE_TRANSPORT_KEYS silently won over --dev-keys."""
    with pytest.raises(ConfigurationError, match=f"given twice: \\${ENV_TRANSPORT_KEYS} and --dev-keys"):
        load_transport_keys(project.manifest, environ={ENV_TRANSPORT_KEYS: "11" * 32}, dev=True)
    with pytest.raises(MissingSecret, match=f"no transport keys for a fresh card: set {ENV_TRANSPORT_KEYS}"):
        load_transport_keys(project.manifest, environ={})


def test_the_simulated_card_manager_keys() -> None:
    assert simulator_keys({}) is None  # the simulated card's own default: the development keys
    assert simulator_keys({ENV_SIM_KEYS: KEY}) == (bytes.fromhex(KEY),) * 3
    with pytest.raises(ConfigurationError, match=f"\\${ENV_SIM_KEYS} holds 2 keys"):
        simulator_keys({ENV_SIM_KEYS: f"{KEY}:{KEY}"})
