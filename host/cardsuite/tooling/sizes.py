"""Code-size figures of the file-system library and the paper's applets (paper 003, Table 4), from
the CAP files `invoke build` converts with the Oracle SDK. The library is two packages: the core
(isofs, the file classes the paper's applets import) and the ISO 7816-4 command processor (isocmd,
which only applets handling the ISO commands load); the paper's comparison is with the core.

A CAP file is a zip of components, each `tag (1) | size (2) | info[size]` (read by cardsuite.tooling.cap).
GlobalPlatform loads all of them but Descriptor and Debug: their sum is the *load size*, what a
package costs on the card. The Method component alone is the bytecode.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cardsuite.errors import ToolchainError
from cardsuite.project import Project
from cardsuite.tooling.cap import NOT_LOADED, CapError, read_components
from cardsuite.tooling.manifest import load_manifest

__all__ = ["CapError", "CapFile", "Component", "break_even", "parse_cap", "run_sizes", "size_report"]

# The paper's Table 4 (bytes): the library package, and each applet without / with the API.
PAPER_PACKAGE = 789
PAPER_APPLETS = {"transparent": (251, 251), "record": (294, 253), "cyclic": (486, 295)}
APPLET_KINDS = ("transparent", "record", "cyclic")
CORE, PROCESSOR = "isofs", "isocmd"  # manifest names of the two library packages

# Persistent memory each file costs beyond its data, from applets/isofs/README.md ("Persistent
# memory per file"): field bytes, plus the 5-byte conditions array, plus one header per object.
FILE_FIELDS = {"transparent": 13, "linear fixed": 17, "linear variable": 19, "cyclic": 18, "DF": 17}
FILE_OBJECTS = {"transparent": 3, "linear fixed": 3, "linear variable": 3, "cyclic": 3, "DF": 2}  # + DF name
CONDITION_BYTES = 5
OBJECT_HEADER = (6, 12)  # typical range of an object header on cards, bytes


@dataclass(frozen=True)
class Component:
    name: str
    tag: int
    size: int  # bytes in the CAP file: tag, size field and info

    @property
    def loaded(self) -> bool:
        return self.name not in NOT_LOADED


@dataclass(frozen=True)
class CapFile:
    path: Path
    file_size: int
    components: dict[str, Component] = field(default_factory=dict)

    @property
    def load_size(self) -> int:
        return sum(c.size for c in self.components.values() if c.loaded)

    @property
    def method_size(self) -> int:
        return self.components["Method"].size if "Method" in self.components else 0


def parse_cap(path: Path) -> CapFile:
    """Reads the components of a CAP file, checking each one's tag and size field."""
    components = {name: Component(name, data[0], len(data)) for name, data in read_components(path).items()}
    return CapFile(path, path.stat().st_size, components)


def _savings(without: int, with_api: int) -> float:
    return round(100.0 * (without - with_api) / without, 1) if without else 0.0


def break_even(library: int, applet_without: int, applet_with: int) -> int | None:
    """The fewest applets for which n x applet_with + library < n x applet_without, or None when an
    applet on the library is not smaller (the library then never pays off)."""
    saved_each = applet_without - applet_with
    return library // saved_each + 1 if saved_each > 0 else None


def _ten(library: int, applet_without: int, applet_with: int) -> dict:
    without, with_api = 10 * applet_without, 10 * applet_with + library
    return {"without": without, "with": with_api, "change_percent": -_savings(without, with_api),
            "library": library, "applet_without": applet_without, "applet_with": applet_with,
            "break_even_applets": break_even(library, applet_without, applet_with)}


def per_file_memory() -> dict[str, dict[str, object]]:
    rows: dict[str, dict[str, object]] = {}
    for kind, fields in FILE_FIELDS.items():
        fixed = fields + CONDITION_BYTES
        objects = FILE_OBJECTS[kind]
        rows[kind] = {"field_and_condition_bytes": fixed, "objects": objects,
                      "bytes_with_headers": [fixed + objects * h for h in OBJECT_HEADER],
                      "extra": "1 length byte per record, inside the budget" if kind == "linear variable"
                      else ("the DF name array, if named" if kind == "DF" else "")}
    return rows


def size_report(caps: dict[str, CapFile]) -> dict:
    """The figures, from parsed CAP files keyed by manifest package name."""
    for needed in (CORE, PROCESSOR, *(f"{v}_{k}" for v in ("paper", "baseline") for k in APPLET_KINDS)):
        if needed not in caps:
            raise ToolchainError(f"no CAP file for package {needed!r}: run `invoke build` with the Oracle SDK")
    library, processor = caps[CORE], caps[PROCESSOR]
    table = []
    for kind in APPLET_KINDS:
        base, paper = caps[f"baseline_{kind}"], caps[f"paper_{kind}"]
        table.append({
            "applet": kind,
            "paper_without": PAPER_APPLETS[kind][0], "paper_with": PAPER_APPLETS[kind][1],
            "load_without": base.load_size, "load_with": paper.load_size,
            "method_without": base.method_size, "method_with": paper.method_size,
        })
    ten = {"paper": _ten(PAPER_PACKAGE, *PAPER_APPLETS["cyclic"])}
    for metric in ("load", "method"):
        ten[metric] = _ten(getattr(library, f"{metric}_size"), getattr(caps["baseline_cyclic"], f"{metric}_size"),
                           getattr(caps["paper_cyclic"], f"{metric}_size"))
    return {
        "packages": {name: {"cap_file": cap.file_size, "load": cap.load_size, "method": cap.method_size,
                            "components": {c.name: c.size for c in cap.components.values()}}
                     for name, cap in sorted(caps.items())},
        "table4": {"paper_package": PAPER_PACKAGE, "core_package": CORE, "package_load": library.load_size,
                   "package_method": library.method_size, "processor_package": PROCESSOR,
                   "processor_load": processor.load_size, "processor_method": processor.method_size,
                   "applets": table},
        "ten_cyclic_applets": ten,
        "persistent_bytes_per_file": per_file_memory(),
    }


def format_report(report: dict) -> str:
    lines = [f"{'package':24} {'CAP file':>9} {'load':>6} {'Method':>7}"]
    for name, row in report["packages"].items():
        lines.append(f"{name:24} {row['cap_file']:9d} {row['load']:6d} {row['method']:7d}")
    t4 = report["table4"]
    lines += ["", "Table 4, bytes: paper without/with the API | ours, load size | ours, Method component",
              f"{'core library':16} paper {t4['paper_package']:4d}      | load {t4['package_load']:5d}"
              f"       | Method {t4['package_method']:5d}   ({t4['core_package']})",
              f"{'ISO processor':16} paper    -      | load {t4['processor_load']:5d}"
              f"       | Method {t4['processor_method']:5d}   ({t4['processor_package']}, not needed by "
              "these applets)"]
    for row in t4["applets"]:
        lines.append(f"{row['applet']:16} paper {row['paper_without']:4d}/{row['paper_with']:<4d} "
                     f"| load {row['load_without']:5d}/{row['load_with']:<5d} "
                     f"| Method {row['method_without']:5d}/{row['method_with']:<5d}")
    lines += ["", "Ten cyclic applets (10 x applet without the API -> 10 x applet + the core library once):"]
    for metric, row in report["ten_cyclic_applets"].items():
        even = row["break_even_applets"]
        extra = f"  (the library pays off from {even} applets)" if even else "  (the library never pays off)"
        lines.append(f"  {metric:7} {row['without']:6d} -> {row['with']:6d}  ({row['change_percent']:+.1f}%){extra}")
    lines += ["", "Persistent memory per file beyond its data (fields + conditions, objects, "
              f"total with {OBJECT_HEADER[0]}..{OBJECT_HEADER[1]}-byte object headers):"]
    for kind, row in report["persistent_bytes_per_file"].items():
        low, high = row["bytes_with_headers"]
        note = f"; {row['extra']}" if row["extra"] else ""
        lines.append(f"  {kind:16} {row['field_and_condition_bytes']:3d} B + {row['objects']} objects "
                     f"= {low}..{high} B{note}")
    return "\n".join(lines)


def run_sizes(project: Project, log: Callable[[str], None] = print) -> dict:
    """Parses every package's CAP file, writes build/reports/sizes.json and logs the table."""
    manifest = load_manifest(project.manifest)
    caps = {}
    for package in manifest.packages:
        path = project.cap_dir / f"{package.name}.cap"
        if path.exists():
            caps[package.name] = parse_cap(path)
    report = size_report(caps)
    target = project.reports / "sizes.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n")
    log(format_report(report))
    log(f"\nwritten to {target}")
    return report



# ---------------------------------------------------------------- memory footprint (measured by the bridge)


def format_footprint(footprint: dict, sizes: dict | None = None) -> str:
    """The bridge's footprint report (cardsuite.bench.footprint) as a table, next to each package's CAP load
    size when the sizes report is given."""
    packages = (sizes or {}).get("packages", {})
    lines = [f"{'install':24} {'load':>6} {'persistent':>10} {'RESET':>6} {'DESELECT':>8} {'API objects':>11}"]
    for name, row in footprint["install"].items():
        load = packages.get(name, {}).get("load", "-")
        lines.append(f"{name:24} {load:>6} {row['persistent']:10d} {row['clear_on_reset']:6d} "
                     f"{row['clear_on_deselect']:8d} {row['api_objects']:11d}")
    lines.append(f"{'CREATE FILE (isoapplet)':31} {'persistent':>10} {'RESET':>6} {'DESELECT':>8}")
    for kind, row in footprint["create_file_isoapplet"].items():
        lines.append(f"{kind:31} {row['persistent']:10d} {row['clear_on_reset']:6d} {row['clear_on_deselect']:8d}")
    return "\n".join(lines)
