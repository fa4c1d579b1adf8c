"""`cardsuite fs …` on the test's card: tree, cat, put, records, append, search, --pin."""

from __future__ import annotations

import argparse

import pytest
from cardsuite.apdu import StatusError
from cardsuite.cli import fs as fs_cli
from cardsuite.cli import main as cli
from cardsuite.errors import ConfigurationError
from cardsuite.trace import Trace
from support import ISO_AID
from support.fsmodel import PIN, swof

pytestmark = pytest.mark.e2e


@pytest.fixture
def run(card, monkeypatch, capsys):
    """Runs `cardsuite fs ARGS` against the test's card; returns (exit status, stdout)."""
    monkeypatch.setattr(card, "disconnect", lambda: None)  # the card outlives the command
    parser = argparse.ArgumentParser(prog="cardsuite")
    fs_cli.register(parser.add_subparsers(dest="command"), cli.add_card_options, lambda args: card)

    def invoke(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        args = parser.parse_args(["fs", *argv])
        status = args.handler(args)
        return status, capsys.readouterr().out

    return invoke


def test_tree_lists_every_file(run) -> None:
    status, out = run("tree")
    assert status == 0
    lines = out.splitlines()
    assert len(lines) == 12
    assert lines[0].startswith("3F00, DF")
    assert lines[2].startswith("    5001, transparent, 128 bytes, SFI 01")
    assert lines[-3].startswith("    6002, cyclic, ")
    assert lines[-2].startswith("  2F00, linear variable, 3 records of up to 32 bytes in 96, SFI 1E")  # EF.DIR
    assert lines[-1].startswith("  2F01, transparent, 5 bytes, SFI 1D")  # EF.ATR
    assert run("tree", "3F00/6000")[1].splitlines()[0].startswith("6000, DF, name F063617264465302")


def test_put_then_cat_by_path_and_by_sfi(run) -> None:
    assert run("put", "3F00/5000/5001", "--offset", "4", "CAFE")[0] == 0
    assert run("cat", "3F00/5000/5001", "--offset", "3", "--length", "4")[1] == "00CAFE00\n"
    assert run("put", "3F00/5000/sfi:1", "--text", "hello")[0] == 0
    assert run("cat", "3F00/5000/sfi:1", "--length", "5")[1] == "68656C6C6F\n"
    assert run("put", "3F00/5000/5001", "--write", "0101")[1] == "wrote 2 bytes at offset 0\n"
    assert run("cat", "3F00/5000/5001", "--length", "2")[1] == "6965\n"


def test_append_records_search(run) -> None:
    before = run("records", "3F00/5000/sfi:3")[1]
    start = 0 if before == "no records\n" else len(before.splitlines())
    assert run("append", "3F00/5000/5003", "--text", "alpha")[0] == 0
    assert run("append", "3F00/5000/sfi:3", "0102")[0] == 0
    lines = run("records", "3F00/5000/5003")[1].splitlines()
    assert lines[start:] == [f"{start + 1:3d}: 616C706861", f"{start + 2:3d}: 0102"]
    assert run("cat", "3F00/5000/sfi:3")[1].splitlines() == lines  # cat lists a record EF
    status, out = run("search", "3F00/5000/5003", "--text", "lph")
    assert status == 0 and str(start + 1) in out.split()
    assert run("search", "3F00/5000/5003", "FFEEDD") == (1, "no record matches\n")


def test_pin_comes_from_the_environment_and_is_masked(card, run, monkeypatch) -> None:
    card.select(ISO_AID)
    swof(card, "00 20 FF 01")
    with pytest.raises(StatusError) as caught:
        run("cat", "3F00/5000/5005")
    assert caught.value.sw == 0x6982
    monkeypatch.setenv("CARDSUITE_PIN", PIN.decode())
    trace = Trace()
    card.trace = trace
    try:
        assert run("put", "--pin", "3F00/5000/5005", "00112233")[0] == 0
        assert run("cat", "--pin", "3F00/5000/5005", "--length", "4")[1] == "00112233\n"
    finally:
        card.trace = None
    text = trace.format()
    assert "4 bytes masked" in text and "31 32 33 34" not in text


def test_pin_without_environment_or_terminal_is_refused(run, monkeypatch) -> None:
    monkeypatch.delenv("CARDSUITE_PIN", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(ConfigurationError):
        run("tree", "--pin")


def test_bad_arguments_are_refused_with_the_reason(run, capsys) -> None:
    for argv, reason in ((["cat", "3F0"], "4-hex-digit"), (["cat", "3F00/sfi:31"], "1..30"),
                         (["put", "5001", "00", "--offset", "-1"], "negative"),
                         (["tree", "--aid", "A0000001"], "5 to 16 bytes"),
                         (["tree", "--aid", "A0" * 17], "5 to 16 bytes")):
        with pytest.raises(SystemExit):
            run(*argv)
        assert reason in capsys.readouterr().err


@pytest.mark.sim_only
def test_the_real_command_line(capsys) -> None:
    assert cli.main(["fs", "tree", "--card", "sim"]) == 0
    assert "6002, cyclic" in capsys.readouterr().out
    assert cli.main(["fs", "cat", "--card", "sim", "3F00/5000/5005"]) == 1
    assert capsys.readouterr().err.startswith("Error: card answered 6982 (security status not satisfied)")
