"""The scms and agent commands: one-line errors, and the orders commands end to end (in processes of their
own: each `scms init` makes a SoftHSM2 token, which a process sees only in its first configuration)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cardsuite.cli.scms import show_puk
from cardsuite.errors import ConfigurationError
from cardsuite.scms.db import Database
from cardsuite.scms.schema import SCHEMA_VERSION
from cardsuite.settings import ENV_SCMS_PASSWORD, ENV_SCMS_TOKEN

from tests.scms.conftest import ADMIN_PASSWORD

ENV = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cardsuite", *args], capture_output=True, text=True, timeout=120,
                          env={**ENV, **env}, stdin=subprocess.DEVNULL)


def test_init_orders_and_errors(tmp_path: Path) -> None:
    folder = str(tmp_path / "D")
    short = _cli("scms", "init", "--dir", folder, **{ENV_SCMS_PASSWORD: "short"})
    assert short.returncode == 1 and short.stderr.strip().splitlines() == [
        "Error: the administrator's password must have at least 12 characters"]
    done = _cli("scms", "init", "--dir", folder, **{ENV_SCMS_PASSWORD: ADMIN_PASSWORD})
    assert done.returncode == 0, done.stderr
    assert "token 'cardsuite-scms'" in done.stdout and ADMIN_PASSWORD not in done.stdout
    assert f"(schema version {SCHEMA_VERSION})" in done.stdout
    again = _cli("scms", "init", "--dir", folder, **{ENV_SCMS_PASSWORD: ADMIN_PASSWORD})
    assert again.returncode == 1 and "already holds an SCMS" in again.stderr and len(again.stderr.splitlines()) == 1
    orders = tmp_path / "orders.csv"
    orders.write_text("ref,holder,profile\nO-1,Hong Gildong,sim-suite\n")
    assert _cli("scms", "orders", "import", str(orders), "--batch", "b1", "--dir", folder).returncode == 0
    out = tmp_path / "bureau.csv"
    exported = _cli("scms", "orders", "export", "--batch", "b1", "--out", str(out), "--dir", folder)
    assert exported.returncode == 0 and out.read_text().splitlines()[1].startswith("O-1,Hong Gildong,sim-suite")
    assert _cli("scms", "orders", "status", "--batch", "b1", "--dir", folder).stdout == "O-1: exported\n"
    missing = _cli("scms", "orders", "status", "--batch", "b1", "--dir", str(tmp_path / "none"))
    assert missing.returncode == 1 and "no SCMS folder" in missing.stderr
    # a database a newer cardsuite migrated: serve refuses it in one line, before listening
    newer = Database(f"sqlite:///{tmp_path / 'D' / 'scms.db'}")
    newer.execute("INSERT INTO scms_schema (version, summary, applied_at) VALUES (?, 'later', 0)",
                  (SCHEMA_VERSION + 1,))
    newer.close()
    refused = _cli("scms", "serve", "--dir", folder, "--listen", "127.0.0.1:9")
    assert refused.returncode == 1 and refused.stderr.strip().splitlines() == [
        f"Error: the SCMS database is at schema version {SCHEMA_VERSION + 1}, newer than this cardsuite's "
        f"{SCHEMA_VERSION}: run a cardsuite that knows it (or restore the database)"]
    # and an unusable wallet.db (the issuer's records, which the server holds open) the same
    newer = Database(f"sqlite:///{tmp_path / 'D' / 'scms.db'}")
    newer.execute("DELETE FROM scms_schema WHERE version = ?", (SCHEMA_VERSION + 1,))
    newer.close()
    (tmp_path / "D" / "wallet.db").write_text("not an SQLite file: " + "x" * 100)
    refused = _cli("scms", "serve", "--dir", folder, "--listen", "127.0.0.1:9")
    assert refused.returncode == 1 and refused.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'D' / 'wallet.db'}: not a usable cardsuite database (file is not a database)"]


def test_agent_errors_are_one_line(tmp_path: Path) -> None:
    no_token = _cli("agent", "--server", "https://127.0.0.1:9", "--ca", str(tmp_path / "ca.pem"), "install",
                    "isoapplet")
    assert no_token.returncode == 1 and no_token.stderr.strip().splitlines() == [
        f"Error: no terminal token: set ${ENV_SCMS_TOKEN} or give --token-file"]
    plain = _cli("agent", "--server", "http://127.0.0.1:9", "--ca", str(tmp_path / "ca.pem"), "install",
                 "isoapplet", **{ENV_SCMS_TOKEN: "x"})
    assert plain.returncode == 1 and "over https:// only" in plain.stderr and len(plain.stderr.splitlines()) == 1
    for bad in ("0", "-2", "soon", "nan", "inf", "3601"):  # refused before a card or a server is touched
        refused = _cli("agent", "--server", "https://127.0.0.1:9", "--ca", str(tmp_path / "ca.pem"), "--open-timeout",
                       bad, "--card", "vpcd:9", "install", "isoapplet", **{ENV_SCMS_TOKEN: "x"})
        assert refused.returncode == 1 and refused.stderr.strip().splitlines() == [
            f"Error: --open-timeout {bad!r}: a number of seconds above 0, at most 3600"], (bad, refused.stderr)


def test_an_emv_system_opens_simulated_cards_with_a_3des_transport_key(tmp_path: Path) -> None:
    """SCP02 cards: with an emv issuer master, the development transport keys go into the token as two-key
    3DES, so its cards are opened over SCP02 through the token."""
    folder = tmp_path / "D"
    done = _cli("scms", "init", "--dir", str(folder), "--kdf", "emv", "--development-transport-keys",
                **{ENV_SCMS_PASSWORD: ADMIN_PASSWORD})
    assert done.returncode == 0, done.stderr
    probe = ("import sys; from pathlib import Path; from cardsuite.scms.kms import TokenKeySet; "
             "from cardsuite.scms.system import load_system; s = load_system(Path(sys.argv[1])); "
             "k = s.kms().open(); print(k.key_type('transport'), TokenKeySet(k, 'transport', None).scp, "
             "TokenKeySet(k, s.issuer_keys.label, s.issuer_keys.kdf).scp)")
    seen = subprocess.run([sys.executable, "-c", probe, str(folder)], capture_output=True, text=True, timeout=120,
                          env=ENV, check=False)
    assert seen.stdout.split() == ["3des", "2", "2"], seen.stderr


def test_the_puk_goes_to_a_new_private_file_to_the_terminal_or_nowhere(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Never into stdout when it is not a terminal (a kiosk's log): into --puk-file, else the controlling
    terminal, else the PIN step fails before the PIN changes (the wallet keeps its one-time PIN)."""
    terminal = tmp_path / "tty"
    terminal.touch()
    show_puk("12345678", None, terminal=str(terminal))
    assert terminal.read_text() == "PUK (keep it apart from the card): 12345678\n"
    assert capsys.readouterr().out == "the PUK is shown on the terminal only\n"
    with pytest.raises(ConfigurationError, match="can be shown nowhere .* --puk-file PATH$"):
        show_puk("12345678", None, terminal=str(tmp_path / "no" / "tty"))
    assert "12345678" not in capsys.readouterr().out
    letter = tmp_path / "puk"
    letter.write_text("an older PUK\n")
    with pytest.raises(ConfigurationError, match="a new file is needed"):
        show_puk("12345678", letter)
    assert letter.read_text() == "an older PUK\n"


def test_the_agent_refuses_a_puk_file_it_would_overwrite_before_the_card(tmp_path: Path) -> None:
    taken = tmp_path / "puk"
    taken.touch()
    for path in (taken, tmp_path / "none" / "puk"):
        refused = _cli("agent", "--server", "https://127.0.0.1:9", "--ca", str(tmp_path / "ca.pem"), "--puk-file",
                       str(path), "--card", "vpcd:9", "install", "wallet-sim", **{ENV_SCMS_TOKEN: "x"})
        assert refused.returncode == 1 and refused.stderr.strip().splitlines() == [
            f"Error: --puk-file {path}: a new file in an existing folder (a PUK is never written over another)"]
