"""`cardsuite ecash story` runs the whole [P004] story on one simulated card: the forged token and the
double spend are caught and traced; the stepwise commands keep their state in the --db file."""

from __future__ import annotations

import pytest
from cardsuite.cli.main import main


@pytest.mark.sim_only
def test_story(tmp_path, capsys) -> None:
    assert main(["ecash", "story", "--card", "sim", "--db", str(tmp_path / "story.db"), "--identity", "Hong"]) == 0
    out = capsys.readouterr().out
    assert "paid bakery 20,430 offline: 10,000 up to count 2 + 100 up to count 4 + 10 up to count 3" in out
    assert "the same token again at bakery: refused" in out
    assert "REFUSED: forged" in out
    assert "REFUSED: double-spending" in out
    assert "→ 'Mallory (cloned card)'" in out
    assert "bakery paid 23,937, bookshop paid 101,233" in out


def test_trace_without_reports(tmp_path, capsys) -> None:
    assert main(["ecash", "trace", "--db", str(tmp_path / "empty.db")]) == 0
    assert "the broker has reported nothing" in capsys.readouterr().out


def test_buy_needs_a_registration_first(tmp_path, capsys) -> None:
    assert main(["ecash", "buy", "--counts", "1,1,1,1,1", "--card", "sim", "--db", str(tmp_path / "x.db")]) == 1
    assert "run `cardsuite ecash register` first" in capsys.readouterr().err
