"""`cardsuite gp` refuses bad input with one line `Error: …` and exit status 1, before touching a card;
keys are never accepted on the command line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cardsuite.cli.main import main

ECHO = str(Path(__file__).parents[1] / "fixtures" / "caps" / "echo.cap")


@pytest.fixture(autouse=True)
def _no_keys_in_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CARDSUITE_GP_KEY", "CARDSUITE_GP_KEY_ENC", "CARDSUITE_GP_KEY_MAC", "CARDSUITE_GP_KEY_DEK",
                 "CARDSUITE_GP_KVN", "CARDSUITE_GP_KEY_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CARDSUITE_GP_GUARD", str(tmp_path / "guard.db"))
    # a card that does not exist: any attempt to reach it would fail differently from the expected errors
    monkeypatch.setenv("CARDSUITE_CARD", "reader:no such reader")


@pytest.mark.parametrize(("argv", "message"), [
    (["gp", "list"], "no GlobalPlatform keys: set CARDSUITE_GP_KEY"),
    (["gp", "delete", "zz", "--dev-keys"], "AID 'zz' is not hex"),
    (["gp", "delete", "0102", "--dev-keys"], "has 2 bytes; an AID has 5 to 16"),
    (["gp", "list", "--dev-keys", "--level", "paranoid"], r"valid levels are mac, enc, mac\+rmac"),
    (["gp", "list", "--dev-keys", "--scp", "05"], "--scp '05': valid values are 02 and 03"),
    (["gp", "list", "--dev-keys", "--kvn", "0x80"], "--kvn must be 0..127"),
    (["gp", "list", "--dev-keys", "--isd", "A0"], "--isd 'A0' has 1 bytes"),
    (["gp", "card-state", "dead", "--dev-keys"], "valid states are op_ready, initialized, secured"),
    (["gp", "card-state", "terminated", "--dev-keys"], "irreversible.*--terminate"),
    (["gp", "install", "--dev-keys"], "give a CAP file, or both --package and --applet"),
    (["gp", "install", "--package", "F06361726401", "--applet", "xyz", "--dev-keys"], "--applet 'xyz' is not hex"),
    (["gp", "load", "/nonexistent.cap", "--dev-keys"], "is not a CAP file"),
    (["gp", "load", ECHO, "--privs", "Root", "--dev-keys"], "unknown privilege 'Root'; valid: "),
    (["gp", "load", ECHO, "--params", "0g", "--dev-keys"], r"--params is not hex \(the value is not shown"),
    (["gp", "install", ECHO, "--key-profile", "/nonexistent.toml"], "cannot read the key profile"),
    (["gp", "list", "--dev-keys", "--kdf", "sha1"], "--kdf 'sha1': valid are emv, visa2, kdf3"),
    (["gp", "list", "--dev-keys", "--mode", "paranoid"], r"valid levels are .*clr, rmac, renc"),
    (["gp", "put-key", "--dev-keys", "--new-keys", "/nonexistent.toml"], "cannot read the key profile"),
    (["gp", "put-key", "--dev-keys", "--new-keys", "/nonexistent.toml", "--type", "rsa"], "--type 'rsa': valid"),
    (["gp", "store-data", "/nonexistent.hex", "--dev-keys"], "cannot read /nonexistent.hex"),
    (["gp", "store-data", ECHO, "--format", "xml", "--dev-keys"], "--format 'xml': valid are dgi, tlv, none"),
    (["gp", "script", "/nonexistent.gp", "--dev-keys"], "cannot read the script"),
    (["gp", "put-key", "--dev-keys", "--new-keys", "x.toml", "--backend", "gppro"], "where any user sees them"),
])
def test_bad_input_is_one_line_and_exit_1(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert re.search(message, err), err


def test_dev_keys_and_environment_keys_conflict(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("CARDSUITE_GP_KEY", "404142434445464748494A4B4C4D4E4F")
    assert main(["gp", "list", "--dev-keys"]) == 1
    assert "keys given twice" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--key", "--key-enc", "-k"])
def test_keys_cannot_be_given_on_the_command_line(option: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["gp", "list", option, "404142434445464748494A4B4C4D4E4F"])
    assert exited.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_unreachable_reader_is_one_line(capsys: pytest.CaptureFixture) -> None:
    assert main(["gp", "cplc"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and err.count("\n") == 1
