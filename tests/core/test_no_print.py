"""Only the front ends print: the CLI, the benches and the demo (cli/, bench/) and the pytest plugin
(testing/). The library layers below them log or return what they found (STYLE: pySim's and
GlobalPlatformPro's rule), so a program using them decides what reaches its terminal."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "host" / "cardsuite"
FRONT_ENDS = ("cli", "bench", "testing")
STREAMS = ("stdout", "stderr")


def _prints(tree: ast.AST) -> list[int]:
    """Lines calling print() or writing to sys.stdout / sys.stderr."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "print":
            lines.append(node.lineno)
        elif (isinstance(func, ast.Attribute) and func.attr == "write" and isinstance(func.value, ast.Attribute)
              and func.value.attr in STREAMS and isinstance(func.value.value, ast.Name)
              and func.value.value.id == "sys"):
            lines.append(node.lineno)
    return lines


def library_prints() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in FRONT_ENDS:
            continue
        found += [f"{relative}:{line}" for line in _prints(ast.parse(path.read_text(), str(path)))]
    return found


def test_the_library_layers_never_print() -> None:
    found = library_prints()
    assert not found, "prints below cli/bench/testing (log, or return it to the caller):\n" + "\n".join(found)


def test_the_check_sees_a_print_and_a_stream_write() -> None:
    tree = ast.parse("import sys\nprint('x')\nsys.stderr.write('y')\nlog.info('z')\nfile.write(b'')\n")
    assert _prints(tree) == [2, 3]
