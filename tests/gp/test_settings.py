"""Safety state lives in the state directory (issue 9, item 5): the brick guard's record of keys that failed on
a card survives `rm -rf build` and a change of folder; CARDSUITE_STATE moves it; the directory is private. And
reading creates nothing (item 15): read-only commands and `deploy --plan` leave every file as they found it,
and the inventory refuses an SQLite file that is not its own."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest
from cardsuite import settings
from cardsuite.cli.gp import default_guard_path
from cardsuite.cli.main import main
from cardsuite.deploy.inventory import Inventory, InventoryError
from cardsuite.errors import ConfigurationError
from cardsuite.gp.guard import BrickGuard
from cardsuite.project import Project
from cardsuite.wallet.store import WalletStore
from test_gp_sim import _cli, _open_card

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "profiles" / "cards" / "sim-suite.toml"


def _fake_checkout(tmp_path: Path) -> Path:
    """A checkout of its own (manifest only), with a build/ folder that `rm -rf build` may remove."""
    checkout = tmp_path / "checkout"
    (checkout / "applets").mkdir(parents=True)
    shutil.copy(ROOT / "applets" / "manifest.toml", checkout / "applets" / "manifest.toml")
    (checkout / "build").mkdir()
    return checkout


def test_the_guard_record_survives_rm_rf_build_and_another_folder(project: Project, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    card = _open_card(project, tmp_path, "scp03")
    checkout = _fake_checkout(tmp_path)
    state = tmp_path / "state"
    monkeypatch.setenv("CARDSUITE_STATE", str(state))
    monkeypatch.delenv("CARDSUITE_GP_GUARD", raising=False)
    monkeypatch.setenv("CARDSUITE_ROOT", str(checkout))
    monkeypatch.setenv("CARDSUITE_GP_KEY", "00112233445566778899AABBCCDDEEFF")  # not this card's keys
    monkeypatch.chdir(checkout)
    status, _, err = _cli(card, ["gp", "list"], capsys)
    assert status == 1 and "card cryptogram does not verify" in err
    assert int(card.manager.failedAuthentications()) == 1

    shutil.rmtree(checkout / "build")  # what `invoke clean` or a fresh clone does
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    status, _, err = _cli(card, ["gp", "list"], capsys)
    assert status == 1 and "already failed on this card" in err and "--retry-auth" in err
    assert int(card.manager.failedAuthentications()) == 1  # refused before the card counted another try
    assert default_guard_path() == state / settings.GUARD_FILE and default_guard_path().is_file()
    assert not list(elsewhere.iterdir()) and not (checkout / "build").exists()


def test_the_state_directory_comes_from_the_environment() -> None:
    assert settings.state_dir({"CARDSUITE_STATE": "/srv/cards", "XDG_STATE_HOME": "/x"}) == Path("/srv/cards")
    assert settings.state_dir({"XDG_STATE_HOME": "/x", "HOME": "/home/a"}) == Path("/x/cardsuite")
    # the XDG specification: a relative XDG_STATE_HOME is ignored
    assert settings.state_dir({"XDG_STATE_HOME": "rel", "HOME": "/home/a"}) == Path("/home/a/.local/state/cardsuite")
    assert settings.state_dir({"HOME": "/home/a"}) == Path("/home/a/.local/state/cardsuite")
    with pytest.raises(ConfigurationError, match="relative path"):
        settings.state_dir({"CARDSUITE_STATE": "state"})
    env = {"CARDSUITE_STATE": "/srv/cards"}
    assert settings.guard_db(env) == Path("/srv/cards/gp-guard.db")
    assert settings.wallet_db(env) == Path("/srv/cards/wallet.db")
    assert settings.inventory_url(env) == "sqlite:////srv/cards/inventory.db"
    env |= {"CARDSUITE_GP_GUARD": "/g.db", "CARDSUITE_DB": "/w.db", "CARDSUITE_INVENTORY": "postgresql://h/i"}
    assert (settings.guard_db(env), settings.wallet_db(env), settings.inventory_url(env)) == (
        Path("/g.db"), Path("/w.db"), "postgresql://h/i")
    for value in (settings.guard_db({"HOME": "/h"}), settings.wallet_db({"HOME": "/h"})):
        assert "build" not in value.parts and value.is_absolute()


def test_the_state_directory_is_created_private_and_only_when_written(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "deep" / "state"
    monkeypatch.setenv("CARDSUITE_STATE", str(state))
    monkeypatch.delenv("CARDSUITE_GP_GUARD", raising=False)
    old = os.umask(0o022)
    try:
        assert settings.guard_db() == state / "gp-guard.db" and not state.exists()  # a path is not a folder
        BrickGuard(settings.guard_db())
    finally:
        os.umask(old)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_this_test_session_never_writes_the_real_state_directory() -> None:
    real = Path.home() / ".local" / "state" / "cardsuite"
    assert settings.state_dir() != real and "cardsuite-test-state-" in str(settings.state_dir())


# ---------------------------------------------------------------- reading creates nothing (item 15)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_wallet_accounts_on_a_missing_database_creates_nothing(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing" / "dir" / "w.db"
    assert main(["wallet", "accounts", "--db", str(missing)]) == 1
    assert capsys.readouterr().err == f"Error: no database at {missing} (nothing recorded there yet)\n"
    assert not (tmp_path / "missing").exists()
    assert main(["wallet", "evidence", "--db", str(missing)]) == 1
    assert not (tmp_path / "missing").exists()


def test_reading_a_wallet_database_leaves_it_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "w.db"
    with WalletStore(path) as registry, registry.transaction():
        registry.add_account("Kim")
    before = _digest(path)
    assert main(["wallet", "accounts", "--db", str(path)]) == 0
    assert "account 1: Kim" in capsys.readouterr().out
    assert _digest(path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["w.db"]
    with WalletStore(path, read_only=True) as reader, pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.add_account("Lee")


def _foreign_file(path: Path) -> str:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        db.execute("INSERT INTO notes (text) VALUES ('another program')")
    db.close()
    return _digest(path)


@pytest.mark.parametrize("plan", [True, False])
def test_the_inventory_refuses_another_programs_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch, plan: bool) -> None:
    monkeypatch.setenv("CARDSUITE_PIN", "2468")
    monkeypatch.setenv("CARDSUITE_PUK", "13572468")
    other = tmp_path / "other.db"
    before = _foreign_file(other)
    argv = ["deploy", str(SUITE), "--card", "sim", "--db", f"sqlite:///{other}", "--wallet-db",
            str(tmp_path / "w.db")] + (["--plan"] if plan else [])
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"Error: {other} is an SQLite file of another program, not a cardsuite inventory: give the " \
        "inventory a file of its own"
    assert _digest(other) == before
    with sqlite3.connect(other) as db:
        assert [row[0] for row in db.execute("SELECT name FROM sqlite_master")] == ["notes"]
    db.close()


def _databases(*folders: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for folder in folders if folder.exists()
            for p in folder.rglob("*.db*")}


def test_deploy_plan_creates_no_inventory_and_no_issuer_database(project: Project, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("CARDSUITE_STATE", str(state))
    for name in ("CARDSUITE_INVENTORY", "CARDSUITE_DB"):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = _databases(project.build, work)
    assert main(["deploy", str(SUITE), "--card", "sim", "--plan", "--guard-db", str(tmp_path / "g.db")]) == 0
    assert "13 of 13 steps to do" in capsys.readouterr().out
    assert not state.exists() and _databases(project.build, work) == before  # nothing created, nothing touched


def test_an_inventory_marks_its_file_and_keeps_reading_old_ones(tmp_path: Path) -> None:
    with Inventory(f"sqlite:///{tmp_path / 'new.db'}") as inventory:
        inventory.record_event("cplc:1", "seen", "ok")
    with Inventory(f"sqlite:///{tmp_path / 'new.db'}", read_only=True) as reader:
        assert [e.action for e in reader.events()] == ["seen"]
    with sqlite3.connect(tmp_path / "new.db") as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == int.from_bytes(b"CSIV", "big")
        db.execute("PRAGMA application_id = 0")  # an inventory written before the mark existed
    db.close()
    with Inventory(f"sqlite:///{tmp_path / 'new.db'}") as inventory:
        assert len(inventory.events()) == 1
    with pytest.raises(InventoryError, match="no inventory at"):
        Inventory(f"sqlite:///{tmp_path / 'none.db'}", read_only=True)
    assert not (tmp_path / "none.db").exists()
