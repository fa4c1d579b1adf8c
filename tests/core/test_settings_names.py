"""Every CARDSUITE_* environment name is defined once, in cardsuite.settings (issue 10): no other module of
host/ nor tasks.py spells one in a string, every name there is documented (README or an option's help), and
the simulator bridge reads the variable the host writes."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

from cardsuite import settings
from cardsuite.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "host" / "cardsuite" / "settings.py"
NAME = re.compile(r"CARDSUITE_[A-Z][A-Z0-9_]*")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes (prose for readers, not a place a program reads a name from)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _spelled_names(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    return [f"{path.relative_to(root)}:{node.lineno}: {match}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
            for match in NAME.findall(node.value)]


def settings_names() -> dict[str, str]:
    return {attr: value for attr, value in vars(settings).items()
            if attr.startswith("ENV_") and isinstance(value, str) and value.startswith("CARDSUITE_")}


def test_no_module_but_settings_spells_a_cardsuite_name() -> None:
    files = [p for p in (ROOT / "host").rglob("*.py") if p != SETTINGS] + [ROOT / "tasks.py"]
    spelled = [hit for path in files for hit in _spelled_names(path)]
    assert not spelled, "read these from cardsuite.settings:\n" + "\n".join(spelled)


def test_this_test_sees_a_spelled_name(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text('"""Mentions CARDSUITE_PIN in prose."""\nX = f"set {1} CARDSUITE_PIN"\n')
    assert [hit.split(": ")[-1] for hit in _spelled_names(module, tmp_path)] == ["CARDSUITE_PIN"]


def test_each_name_once() -> None:
    names = list(settings_names().values())
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def _help_texts(parser: argparse.ArgumentParser) -> list[str]:
    texts = [parser.format_help()]
    for action in parser._actions:  # argparse keeps subcommands only there
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                texts += _help_texts(sub)
    return texts


def test_every_name_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    helps = " ".join(" ".join(_help_texts(build_parser())).split())  # argparse wraps lines
    documented = set(NAME.findall(readme)) | set(NAME.findall(helps))
    missing = sorted(set(settings_names().values()) - documented)
    assert not missing, f"document these in README or an option's help: {missing}"


def test_the_bridge_reads_the_variable_the_host_sets() -> None:
    java = (ROOT / "host" / "simbridge" / "src" / "cardsuite" / "simbridge" / "vpcd" / "VpcdOptions.java").read_text()
    assert re.search(rf'KEYS_VARIABLE = "{settings.ENV_SIM_KEYS}";', java)
