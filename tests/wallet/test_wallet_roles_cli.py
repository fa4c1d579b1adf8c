"""`cardsuite wallet …` in-process: the whole flow on one simulated card (`wallet demo`), the same flow
as separate commands on one card, masked card numbers, secrets only from the environment, and bad
input answered with one line `Error: …` and exit status 1."""

from __future__ import annotations

import re
import sqlite3

import pytest
from cardsuite.cli import common as cli_common
from cardsuite.cli import main as cli
from cardsuite.transport.base import Transport
from support import PIN, PUK

MASKED = re.compile(r"\b940001\*{6}\d{4}\b")
_LONG_DIGITS = re.compile(r"\d{12,}")
_HEX_TOKENS = re.compile(r"V-Card [0-9a-f]+…|auth code [0-9A-F]+")  # hex that may happen to be all digits


def shows_a_number(text: str) -> bool:
    """Whether 12 or more digits in a row (an unmasked card number) appear."""
    return _LONG_DIGITS.search(_HEX_TOKENS.sub("", text)) is not None


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in ("CARDSUITE_PIN", "CARDSUITE_PUK", "CARDSUITE_NEW_PIN", "CARDSUITE_ISSUER_SECRET",
                 "CARDSUITE_ISSUER_KEY_FILE", "CARDSUITE_TRANSPORT_KEYS", "CARDSUITE_TRACE", "CARDSUITE_CARD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CARDSUITE_PIN", PIN)
    monkeypatch.setenv("CARDSUITE_PUK", PUK)
    monkeypatch.setenv("CARDSUITE_DB", str(tmp_path / "cli.db"))
    return monkeypatch


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _one_line_error(status: int, err: str, text: str) -> None:
    assert status == 1
    lines = [line for line in err.splitlines() if not line.startswith("getInstance")]  # jCardSim's own chatter
    assert len(lines) == 1 and lines[0].startswith("Error: ") and text in lines[0], err


class Borrowed(Transport):
    """The test's card lent to the CLI: each command's connect/disconnect leaves the card as it is."""

    def __init__(self, inner: Transport) -> None:
        super().__init__()
        self.inner = inner
        self.name = inner.name

    def connect(self) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def reset(self) -> bytes:
        return self.inner.reset()

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def transmit_raw(self, command: bytes) -> bytes:
        return self.inner.transmit_raw(command)


@pytest.fixture
def lent(card, env):
    env.setattr(cli_common, "open_transport", lambda spec: Borrowed(card))
    return card


# ---------------------------------------------------------------- the whole flow


@pytest.mark.e2e
def test_demo_runs_the_whole_flow_on_the_simulator(env, capsys, tmp_path) -> None:
    status, out, err = run(capsys, "wallet", "demo", "--card", "sim", "--dev-keys")
    assert status == 0, err
    assert MASKED.search(out) and not shows_a_number(out)  # masked only
    for step in ("personalised card", "enrolled: V-Card", "credited 100000", "paid 4500", "paid 60000",
                 "refused (replayed)", "balance 35500", "payment", "credit"):
        assert step in out
    assert "approved, auth code" in out and out.count("verified with the stored PKC") == 2
    status, out, _ = run(capsys, "wallet", "accounts")
    assert status == 0 and MASKED.search(out) and "enrolled" in out and "proofed" in out
    status, out, _ = run(capsys, "wallet", "evidence")
    assert status == 0 and out.count("signature verified with the stored PKC") == 2


@pytest.mark.isolated
@pytest.mark.e2e
def test_the_flow_as_separate_commands_on_one_card(lent, capsys, tmp_path) -> None:
    db = str(tmp_path / "cli.db")
    keys = ("--dev-keys", "--db", db)
    status, out, err = run(capsys, "wallet", "personalise", "--holder", "Han", "--step-up", "20000", *keys)
    assert status == 0, err
    assert MASKED.search(out) and "account 1" in out and not shows_a_number(out)
    status, out, err = run(capsys, "wallet", "pay", "100", "--item", "tea", *keys)
    _one_line_error(status, err, "balance is too low")  # issued, not enrolled, so not credited either
    status, out, err = run(capsys, "wallet", "enrol", "--account", "1", "--evidence", "ID card checked", *keys)
    assert status == 0 and "enrolled card" in out, err
    assert run(capsys, "wallet", "credit", "--account", "1", "50000", "--reference", "TOPUP1", *keys)[0] == 0
    status, out, err = run(capsys, "wallet", "pay", "25000", "--item", "concert ticket", "--merchant", "TICKETS",
                           *keys)
    assert status == 0 and "approved: 25000 at TICKETS" in out, err
    assert run(capsys, "wallet", "balance")[1] == "balance: 25000\n"
    status, out, _ = run(capsys, "wallet", "log")
    assert status == 0 and "payment" in out and "TICKETS" in out and "TOPUP1" in out
    status, out, _ = run(capsys, "wallet", "status")
    assert "state ACTIVE" in out and "PIN tries 3" in out
    status, out, err = run(capsys, "wallet", "block", "--account", "1", "--reason", "lost", *keys)
    assert status == 0, err
    status, out, err = run(capsys, "wallet", "pay", "100", "--item", "tea", *keys)
    _one_line_error(status, err, "account-blocked")
    assert run(capsys, "wallet", "unblock", "--account", "1", *keys)[0] == 0
    assert run(capsys, "wallet", "pay", "100", "--item", "tea", *keys)[0] == 0
    status, out, _ = run(capsys, "wallet", "evidence", "--db", db)
    assert status == 0 and out.count("verified") == 2


@pytest.mark.isolated
def test_pin_commands_take_pins_from_the_environment_only(lent, env, capsys, tmp_path) -> None:
    keys = ("--dev-keys", "--db", str(tmp_path / "pins.db"))
    assert run(capsys, "wallet", "personalise", "--holder", "Seo", *keys)[0] == 0
    env.setenv("CARDSUITE_NEW_PIN", "13579")
    assert run(capsys, "wallet", "pin", "change")[1] == "PIN changed\n"
    env.setenv("CARDSUITE_PIN", PIN)  # the old one now
    status, _, err = run(capsys, "wallet", "balance")
    _one_line_error(status, err, "63C2")
    assert run(capsys, "wallet", "pin", "status")[1] == "PIN tries left: 2\n"
    assert run(capsys, "wallet", "pin", "unblock")[1] == "PIN unblocked and set\n"
    env.setenv("CARDSUITE_PIN", "13579")
    assert run(capsys, "wallet", "balance")[1] == "balance: 0\n"


def test_trace_shows_apdus_with_pins_and_keys_masked(env, capsys) -> None:
    status, out, err = run(capsys, "wallet", "demo", "--dev-keys", "--trace")
    assert status == 0
    assert "[8 bytes masked: VERIFY reference data]" in err
    assert "masked: wallet PERSONALISE (keys, PIN, PUK)]" in err
    pin_hex = " ".join(f"{b:02X}" for b in PIN.encode())
    assert pin_hex not in err and PIN not in err
    assert not shows_a_number(out)


def test_a_tampered_evidence_record_fails_verification(env, capsys, tmp_path) -> None:
    assert run(capsys, "wallet", "demo", "--dev-keys")[0] == 0
    with sqlite3.connect(tmp_path / "cli.db") as raw:
        raw.execute("UPDATE merchant_evidence SET amount = 1 WHERE id = 1")
    status, out, _ = run(capsys, "wallet", "evidence")
    assert status == 1 and "evidence 1: FAILED" in out and "evidence 2: 60000" in out


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("argv, message", [
    (["wallet", "personalise", "--holder", "X", "--number", "9400011234567891", "--dev-keys"], "check digit"),
    (["wallet", "personalise", "--holder", "X", "--number", "4111111111111111", "--dev-keys"], "not under"),
    (["wallet", "pay", "100", "--item-hex", "zz", "--dev-keys"], "not hex"),
    (["wallet", "pay", "12x", "--item", "tea", "--dev-keys"], "not an amount"),
    (["wallet", "pay", "100", "--item", "tea", "--merchant", "TOO-LONG-ID", "--dev-keys"], "merchant ID"),
    (["wallet", "credit", "--account", "1", "0", "--dev-keys"], "an amount is 1"),
    (["wallet", "demo", "--max-payment", "10", "--step-up", "20", "--dev-keys"], "step-up threshold"),
    (["wallet", "demo"], "no issuer master secret"),
    (["wallet", "personalise", "--holder", "X", "--iin", "12", "--dev-keys"], "6 digits"),
])
def test_bad_input_is_one_line_error_and_exit_1(env, capsys, argv: list[str], message: str) -> None:
    status, out, err = run(capsys, *argv)
    _one_line_error(status, err, message)
    assert "9400011234567891" not in err and "4111111111111111" not in err


def test_an_unknown_card_is_a_usage_error_before_anything_runs(env, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["wallet", "pay", "100", "--item", "tea", "--card", "floppy", "--dev-keys"])
    err = capsys.readouterr().err.splitlines()
    assert exited.value.code == 2 and len(err) == 1 and err[0].startswith("Error: ") and "unknown card" in err[0]


def test_a_missing_pin_is_an_error_not_a_prompt_without_a_terminal(env, capsys) -> None:
    env.delenv("CARDSUITE_PIN")
    status, _, err = run(capsys, "wallet", "demo", "--dev-keys")
    _one_line_error(status, err, "set CARDSUITE_PIN")
    status, _, err = run(capsys, "wallet", "balance")
    _one_line_error(status, err, "set CARDSUITE_PIN")


def test_the_transport_keys_are_not_taken_silently(env, capsys) -> None:
    env.setenv("CARDSUITE_ISSUER_SECRET", "ab" * 32)
    status, _, err = run(capsys, "wallet", "demo")  # a real issuer secret, but no transport keys given
    _one_line_error(status, err, "CARDSUITE_TRANSPORT_KEYS")
    env.setenv("CARDSUITE_TRANSPORT_KEYS", bytes(range(0x40, 0x60)).hex())
    status, out, err = run(capsys, "wallet", "demo")  # the simulated card's transport keys, given explicitly
    assert status == 0, err
    assert "CARDSUITE_ISSUER_SECRET" in out


def test_the_database_refuses_another_issuer_secret(env, capsys) -> None:
    assert run(capsys, "wallet", "demo", "--dev-keys")[0] == 0
    env.setenv("CARDSUITE_ISSUER_SECRET", "cd" * 32)
    env.setenv("CARDSUITE_TRANSPORT_KEYS", bytes(range(0x40, 0x60)).hex())
    status, _, err = run(capsys, "wallet", "demo")
    _one_line_error(status, err, "another master secret")
