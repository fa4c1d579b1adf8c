"""Every bad command line is answered the same way: a non-zero exit status and exactly one stderr line
`Error: …` that names what was wrong, never a traceback. Each case runs `cardsuite` as a subprocess, as a
user would: the four reported cases, then a sweep of obviously bad arguments over every subcommand the
parser has (an unknown option, a value each typed option or positional rejects, a choice not offered)."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from cardsuite.cli.main import build_parser
from cardsuite.errors import ConfigurationError
from cardsuite.sim.targets import open_transport

GARBAGE = "\x01zz"  # rejected by every typed option (hex, numbers, paths in the tree, card specs)
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def _environment(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDSUITE_")}
    env.update(CARDSUITE_DB=str(tmp / "wallet.db"), CARDSUITE_STATE=str(tmp / "state"),
               CARDSUITE_INVENTORY=f"sqlite:///{tmp / 'inventory.db'}")
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> Run:
    done = subprocess.run([sys.executable, "-m", "cardsuite", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=env, cwd=cwd, timeout=120)
    return Run(done.returncode, done.stdout, done.stderr)


def _assert_one_error_line(run: Run, *mentions: str) -> str:
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), run.stderr
    assert run.returncode != 0
    for mention in mentions:
        assert mention in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return _environment(tmp_path)


# ---------------------------------------------------------------- the reported cases


def test_fs_put_with_a_bad_file_or_bad_data(env) -> None:
    _assert_one_error_line(_run(["fs", "put", "FILE", "XYZ"], env), "FILE")
    # the data is checked by the command (hex, or text with --text): it used to end in a traceback
    _assert_one_error_line(_run(["fs", "put", "5001", "XYZ"], env), "put data", "XYZ")


def test_send_to_a_vpcd_slot_that_is_not_a_number(env) -> None:
    line = _assert_one_error_line(_run(["send", "--card", "vpcd:x", "00A4040000"], env), "vpcd:x")
    assert "invalid literal" not in line
    # the same from the environment, and from library code that opens a transport itself
    _assert_one_error_line(_run(["send", "00A4040000"], {**env, "CARDSUITE_CARD": "vpcd:x"}), "vpcd:x")
    with pytest.raises(ConfigurationError, match="vpcd:x"):
        open_transport("vpcd:x")


def test_a_binary_toml_profile_is_named(env, tmp_path: Path) -> None:
    profile = tmp_path / "binary.toml"
    profile.write_bytes(b"\x00\xff\xfe\x80 not text")
    line = _assert_one_error_line(_run(["deploy", str(profile), "--plan"], env), str(profile))
    assert "codec" not in line
    # a key profile too
    _assert_one_error_line(_run(["gp", "list", "--key-profile", str(profile)], env), str(profile))


def test_an_unreachable_postgresql_inventory_is_one_line(env) -> None:
    pytest.importorskip("psycopg")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = _run(["deploy", "profiles/cards/sim-suite.toml", "--plan", "--db", f"postgresql://127.0.0.1:{port}/x"],
               env)
    _assert_one_error_line(run, "inventory", str(port))


# ---------------------------------------------------------------- the sweep


def _rejects(kind) -> bool:
    if kind is None or kind is str:
        return False
    try:
        kind(GARBAGE)
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        return True
    return False


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser, bool]]:
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subcommands:
        yield path, parser, True
        return
    yield path, parser, False
    for name, sub in subcommands[0].choices.items():
        yield from _commands(sub, (*path, name))


def _sweep() -> list[tuple[str, list[str]]]:
    cases: list[tuple[str, list[str]]] = [("no command", []), ("unknown command", ["no-such-command"])]
    checked: set[tuple[str, str, object]] = set()  # (group, option, type): a shared option once per group
    for path, parser, leaf in _commands(build_parser()):
        name = " ".join(path)
        if not path:
            continue
        if not leaf:
            cases.append((f"{name} without a subcommand", list(path)))
            continue
        cases.append((f"{name} --no-such-option", [*path, "--no-such-option"]))
        positional_done = False
        for action in parser._actions:
            if action.option_strings and action.nargs != 0:
                option = action.option_strings[-1]
                if (path[0], option, action.type) in checked:
                    continue
                checked.add((path[0], option, action.type))
                if action.choices:
                    cases.append((f"{name} {option} not a choice", [*path, option, "no-such-choice"]))
                elif _rejects(action.type):
                    cases.append((f"{name} {option} garbage", [*path, option, GARBAGE]))
            elif not action.option_strings and not positional_done:
                positional_done = True  # only the first positional is reached without valid ones before it
                if _rejects(action.type) and (path[0], action.dest, action.type) not in checked:
                    checked.add((path[0], action.dest, action.type))
                    cases.append((f"{name} {action.dest} garbage", [*path, GARBAGE]))
    return cases


SWEEP = _sweep()


@pytest.fixture(scope="module")
def sweep_runs(tmp_path_factory) -> dict[str, Run]:
    env = _environment(tmp_path_factory.mktemp("sweep"))
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        runs = pool.map(lambda case: _run(case[1], env), SWEEP)
        return {name: run for (name, _), run in zip(SWEEP, runs, strict=True)}


def test_the_sweep_reaches_every_command_group() -> None:
    groups = {args[0] for _, args in SWEEP if args}
    assert {"send", "sim", "fs", "wallet", "ecash", "gp", "deploy"} <= groups
    assert len(SWEEP) > 50


@pytest.mark.parametrize("name", [name for name, _ in SWEEP])
def test_bad_arguments_get_one_error_line(name: str, sweep_runs: dict[str, Run]) -> None:
    run = sweep_runs[name]
    _assert_one_error_line(run)
    assert run.returncode == 2  # argparse's status for a bad command line, before anything runs
    assert run.stdout == ""
