"""The build benchmark's figure for what `invoke build` does before build() (issue 13, no-op build): invoke's own
start and the setup check, timed in a fresh interpreter without running a task."""

from __future__ import annotations

import pytest
from cardsuite.bench.build import _timed_invoke_start

pytest.importorskip("invoke")


def test_invoke_start_and_the_setup_check_are_timed_apart(project) -> None:
    figures = _timed_invoke_start(project)
    assert isinstance(figures["setup_current"], bool)
    assert 0 < figures["import_seconds"] < figures["seconds_outside"]
    assert 0 <= figures["setup_check_seconds"] < figures["seconds_outside"]
