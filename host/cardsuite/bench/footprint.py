"""Memory footprint per applet (issue 13), measured by the bridge: what each applet's install() allocates on a
fresh simulated card, and what CREATE FILE allocates per file in the ISO applet, by kind (persistent,
CLEAR_ON_RESET, CLEAR_ON_DESELECT). The bridge counts applet code's own allocations (AllocationMeter.java: arrays
by element size, applet-class instances by their fields, transient arrays by event, as a Java Card VM stores them,
without object headers) and the API objects it creates with `new`; keys and engines from the API's factories are
not counted. Written to build/reports/footprint.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from cardsuite.fs.client import IsoFileSystem, Structure, encode_fcp
from cardsuite.project import Project
from cardsuite.sim.bridge import AppletInstall, manifest_applets
from cardsuite.sim.inprocess import SimulatorTransport
from cardsuite.tooling.manifest import load_manifest

ISO_DEFAULT_PIN = b"1234"  # the ISO applet's PIN when installed without parameters (IsoApplet.DEFAULT_PIN)
# one file of each kind, in the MF (whose create condition is the PIN)
FILES = {
    "transparent EF, 32 bytes": encode_fcp(0x7F01, Structure.TRANSPARENT, size=32),
    "linear fixed EF, 4 records of 16": encode_fcp(0x7F02, Structure.LINEAR_FIXED, record_size=16, records=4),
    "cyclic EF, 4 records of 16": encode_fcp(0x7F03, Structure.CYCLIC, record_size=16, records=4),
    "DF": encode_fcp(0x7F04, Structure.DF),
}


@dataclass(frozen=True)
class Footprint:
    persistent: int
    clear_on_reset: int
    clear_on_deselect: int
    api_objects: int

    @classmethod
    def between(cls, before: tuple[int, int, int, int], after: tuple[int, int, int, int]) -> Footprint:
        return cls(*(a - b for a, b in zip(after, before, strict=True)))


def install_footprint(project: Project, applet: AppletInstall) -> Footprint:
    """The applet alone on a fresh card: what its install() (and its classes' static initialisers) allocate."""
    with SimulatorTransport(project, applets=[]) as card:
        before = card.allocations()
        card.install(applet)
        return Footprint.between(before, card.allocations())


def file_footprints(project: Project) -> dict[str, Footprint]:
    """CREATE FILE of one file of each kind in the ISO applet, each measured on its own."""
    iso = next(a for a in manifest_applets(project) if a.class_name.endswith(".IsoApplet"))
    rows: dict[str, Footprint] = {}
    with SimulatorTransport(project, applets=[iso]) as card:
        fs = IsoFileSystem(card)
        fs.select_application(iso.aid)
        fs.verify(ISO_DEFAULT_PIN)
        for kind, fcp in FILES.items():
            fs.select_mf()
            before = card.allocations()
            fs.create_file(fcp)
            rows[kind] = Footprint.between(before, card.allocations())
    return rows


def run_footprint(project: Project, log=print) -> dict:
    manifest = load_manifest(project.manifest)
    installs = {}
    for package, applet in manifest.simulated_applets():
        install = AppletInstall(applet.aid, package.qualified(applet), applet.params)
        installs[package.name] = install_footprint(project, install)
    report = {
        "what": "bytes allocated by applet code, counted by the simulator bridge (no object headers; keys and "
                "engines from API factories not counted)",
        "install": {name: asdict(f) for name, f in installs.items()},
        "create_file_isoapplet": {kind: asdict(f) for kind, f in file_footprints(project).items()},
    }
    target = project.reports / "footprint.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n")
    return report
