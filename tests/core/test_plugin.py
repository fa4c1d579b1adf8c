"""The pytest plugin as its users meet it: the namespaced option and its alias, the environment fallback,
markers checked at collection, the provenance in the report header, and the tearing fixture's contract."""

from __future__ import annotations

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.testing.tearing import TearAtEveryWrite
from support import ECHO_AID


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """A pytest session of its own in a child process: the plugin's JPype import and this session's JVM stay
    apart (an in-process run would drop and re-import modules the running simulator uses)."""
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


SHOW_CARD = """
def test_show(request):
    print("CARD=" + request.config.getoption("--cardsuite-card"))
"""


@pytest.mark.parametrize("argv, env, expected", [
    ([], None, "sim"),
    (["--cardsuite-card", "vpcd"], None, "vpcd"),
    (["--card", "reader:0"], None, "reader:0"),  # the old spelling, kept
    ([], "vpcd", "vpcd"),
    (["--cardsuite-card", "sim"], "vpcd", "sim"),  # the command line overrides the environment
], ids=["default", "namespaced", "alias", "env", "argv-over-env"])
def test_the_card_option_alias_and_environment(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                               argv: list[str], env: str | None, expected: str) -> None:
    if env is None:
        monkeypatch.delenv("CARDSUITE_CARD", raising=False)
    else:
        monkeypatch.setenv("CARDSUITE_CARD", env)
    pytester.makepyfile(SHOW_CARD)
    result = run(pytester, "-s", *argv)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*CARD={expected}"])


def test_a_bad_card_spec_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_CARD)
    result = run(pytester, "--cardsuite-card", "floppy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--cardsuite-card 'floppy': use sim, vpcd, reader:<name or index> or replay:FILE*"])


def test_an_unknown_marker_fails_the_run_at_collection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.sim_onyl
        def test_misspelt():
            pass

        @pytest.mark.sim_only
        def test_right():
            pass
    """)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_misspelt: unknown marker 'sim_onyl' (cardsuite's: e2e, isolated, sim_only)*"])
    result.stdout.no_fnmatch_line("*passed*")


def test_our_markers_take_no_arguments(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.isolated("please")
        def test_with_argument():
            pass
    """)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_with_argument: marker 'isolated' takes no arguments*"])


def test_the_header_records_card_simulator_and_sdk(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_CARD)
    result = run(pytester, "--card", "vpcd")
    result.stdout.fnmatch_lines([
        "cardsuite card: vpcd",
        "cardsuite simulator: jcardsim-*, bridge built; *",
    ])
    assert any("Oracle SDK" in line for line in result.stdout.lines if line.startswith("cardsuite simulator:"))


@pytest.mark.sim_only
@pytest.mark.isolated
def test_tearing_a_command_without_writes_is_reported_not_passed(card, tear_at_every_write: TearAtEveryWrite) -> None:
    """SELECT of the echo applet writes nothing: asked to tear it at write 1, the helper fails the test."""
    select = CommandAPDU(0x00, 0xA4, 0x04, 0x00, ECHO_AID)
    response, writes = tear_at_every_write.count_writes(lambda: card.exchange(select))
    assert (response.sw, writes) == (0x9000, 0)
    torn: list[int] = []
    with pytest.raises(AssertionError, match="not torn at write 1 of 1"):
        tear_at_every_write(lambda: card.exchange(select), after_tear=torn.append, writes=1)
    done = tear_at_every_write(lambda: card.exchange(select), after_tear=torn.append)
    assert (done.result.sw, done.torn, torn) == (0x9000, 0, [])
