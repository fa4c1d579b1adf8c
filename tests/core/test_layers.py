"""The package's import rule: no import cycles, and no import that goes up the layers.

Layers, lowest first (README, "Host package"): the flat vocabulary; crypto; transport and tooling; sim;
the domain clients fs, gp and wallet; ecash (built on the wallet); deploy; and the front ends cli, bench and
testing. A module may import its own package and anything in a lower layer, never a layer above it nor a
sibling package of its own layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "host" / "cardsuite"
LAYERS: dict[str, int] = {
    "": 0,  # the flat vocabulary: errors, apdu, tlv, trace, settings, project, ...
    "crypto": 1,
    "transport": 2, "tooling": 2,
    "sim": 3,
    "fs": 4, "gp": 4, "wallet": 4,
    "ecash": 5,
    "deploy": 6,
    "scms": 7,  # the card management system, on deploy and gp (README, "Host package")
    "cli": 8, "bench": 8, "testing": 8,
    "__main__": 9,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports (at any depth of its code)."""
    graph: dict[str, set[str]] = {}
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                raise AssertionError(f"{path}: relative import; the package uses absolute imports")
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            found.update(t for t in targets if t in modules and t != name)
        graph[name] = found
    return graph


def _package(module: str) -> str:
    """'cardsuite.wallet.card' -> 'wallet'; the flat modules -> ''."""
    parts = module.split(".")[1:]
    if not parts:
        return ""
    if len(parts) == 1 and not (PACKAGE / parts[0]).is_dir():
        return "__main__" if parts[0] == "__main__" else ""
    return parts[0]


def test_every_package_has_a_layer() -> None:
    packages = {_package(m) for m in _imports()}
    assert packages <= set(LAYERS), f"give these a layer in LAYERS: {sorted(packages - set(LAYERS))}"


def test_no_import_goes_up_or_sideways() -> None:
    wrong = []
    for module, targets in _imports().items():
        here = _package(module)
        for target in targets:
            there = _package(target)
            if there != here and LAYERS[there] >= LAYERS[here] and not (here == "" == there):
                wrong.append(f"{module} ({here or 'vocabulary'}, layer {LAYERS[here]}) imports {target} "
                             f"({there or 'vocabulary'}, layer {LAYERS[there]})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles() -> None:
    graph = _imports()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)
