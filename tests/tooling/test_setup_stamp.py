"""`invoke setup`'s check as `invoke build` runs it first (issue 13, no-op build): once the Debian and Python
checks passed, a stamp of stats answers for them until dpkg, pip's install record or pyproject.toml change."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("invoke")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """tasks.py loaded as a module, its stamp, dpkg's status file, pip's record and the checkout in tmp_path."""
    saved_path = list(sys.path)
    spec = importlib.util.spec_from_file_location("cardsuite_tasks_under_test", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path[:] = saved_path
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "pyproject.toml").write_text("[project]\nname = 'cardsuite'\n")
    record = tmp_path / "cardsuite-0.1.0.dist-info" / "direct_url.json"
    record.parent.mkdir()
    record.write_text('{"url": "file:///checkout", "dir_info": {"editable": true}}')
    (tmp_path / "status").write_text("Package: ant\n")
    monkeypatch.setattr(module, "ROOT", checkout)
    monkeypatch.setattr(module, "DEPS", tmp_path / "deps")
    monkeypatch.setattr(module, "SETUP_STAMP", tmp_path / "deps" / ".setup.fingerprint")
    monkeypatch.setattr(module, "DPKG_STATUS", tmp_path / "status")
    monkeypatch.setattr(module, "_install_record", lambda: record)
    module.test_record = record
    return module


def _later(path: Path) -> None:
    """A newer modification time, as a rewrite gets (without waiting for the clock)."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_no_stamp_means_the_full_check(tasks) -> None:
    assert not tasks._setup_current()


def test_a_passed_check_is_current_until_dpkg_changes(tasks) -> None:
    tasks._record_setup()
    assert tasks._setup_current()
    _later(tasks.DPKG_STATUS)  # an apt-get install or remove
    assert not tasks._setup_current()


def test_another_pip_install_or_a_changed_pyproject_means_the_full_check(tasks) -> None:
    tasks._record_setup()
    _later(tasks.test_record)  # another clone's `pip install -e` writes its own record
    assert not tasks._setup_current()
    tasks._record_setup()
    (tasks.ROOT / "pyproject.toml").write_text("[project]\nname = 'cardsuite'\nversion = '2'\n")
    assert not tasks._setup_current()
    tasks._record_setup()
    tasks.test_record.unlink()  # uninstalled
    assert not tasks._setup_current()


def test_no_install_record_no_stamp_and_a_broken_stamp_is_no_stamp(tasks, monkeypatch) -> None:
    monkeypatch.setattr(tasks, "_install_record", lambda: None)
    tasks._record_setup()
    assert not tasks.SETUP_STAMP.exists() and not tasks._setup_current()
    tasks.DEPS.mkdir()
    tasks.SETUP_STAMP.write_text("not json")
    assert not tasks._setup_current()
