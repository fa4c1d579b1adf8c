"""The demo's command-line part: `cardsuite` processes with the card and database on their command line and
the PIN in their own environment; the demo's own process environment is never changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cardsuite.cli.demo import DEMO_PIN, cli_steps, run_cli
from cardsuite.errors import CardsuiteError
from cardsuite.project import Project


def test_each_step_names_its_card_and_database(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    for _, argv in cli_steps(database):
        assert argv[argv.index("--card") + 1] == "sim"
        assert argv[0] == "fs" or argv[argv.index("--db") + 1] == str(database)


def test_a_step_runs_as_its_own_process_and_leaves_our_environment(project: Project, tmp_path: Path,
                                                                     capfd: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARDSUITE_PIN", raising=False)
    before = dict(os.environ)
    [(_, tree)] = [step for step in cli_steps(tmp_path / "demo.db") if step[1][0] == "fs"]
    run_cli(project, tree, {"CARDSUITE_PIN": DEMO_PIN})
    assert capfd.readouterr().out.startswith("3F00, DF")  # the ISO applet's master file, from the child
    assert dict(os.environ) == before
    # the PIN reaches only the child it is given to: without it, a command needing it fails, and says so
    with pytest.raises(CardsuiteError, match=r"`cardsuite wallet balance --card sim` failed \(exit 1\)"):
        run_cli(project, ["wallet", "balance", "--card", "sim"], {})
    assert "set CARDSUITE_PIN" in capfd.readouterr().err
