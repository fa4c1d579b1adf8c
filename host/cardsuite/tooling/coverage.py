"""Applet code coverage (issue 13): JaCoCo's execution data from the simulator JVMs of a test run, reported
as HTML and XML with the applets' line and branch coverage (build/coverage/).

The simulator JVMs record it (cardsuite.sim.bridge.coverage_options, on $CARDSUITE_COVERAGE); the report
reads the classes as the bridge defined them (dumped by the agent) next to the applets' sources."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from xml.etree import ElementTree

from cardsuite.errors import ToolchainError
from cardsuite.project import Project
from cardsuite.settings import ENV_COVERAGE
from cardsuite.tooling.manifest import load_manifest

EXEC_FILE = "jacoco.exec"


@dataclass(frozen=True)
class Counter:
    covered: int
    missed: int

    @property
    def percent(self) -> float:
        total = self.covered + self.missed
        return round(100 * self.covered / total, 1) if total else 0.0


@dataclass(frozen=True)
class CoverageSummary:
    lines: Counter
    branches: Counter
    packages: dict[str, dict[str, Counter]]  # Java package -> LINE / BRANCH


def class_dump(exec_path: Path) -> Path:
    """Where the agent dumps the classes it saw, as defined (the bridge rewrites the applets' bytecode first):
    the report reads these, whose class IDs match the execution data, not build/sim/classes."""
    return exec_path.parent / "classes"


def agent_options(project: Project, exec_path: Path) -> list[str]:
    """The JaCoCo agent on the applets' packages, appending to ``exec_path`` (JaCoCo locks it, so JVMs side by
    side share it) when the JVM exits. inclnolocationclasses: the bridge defines applet classes without a code
    source, which JaCoCo skips otherwise."""
    exec_path = exec_path.resolve()
    includes = ":".join(f"{p.java}.*" for p in load_manifest(project.manifest).packages)
    return [f"-javaagent:{project.jacoco_jar('agent')}=destfile={exec_path},append=true,includes={includes},"
            f"classdumpdir={class_dump(exec_path)},inclnolocationclasses=true,jmx=false"]


def exec_file(project: Project) -> Path:
    return project.coverage / EXEC_FILE


def fresh_exec_file(project: Project) -> Path:
    """A clean start: the previous run's execution data and class dump removed."""
    for stale in (project.coverage / EXEC_FILE, project.coverage / "classes"):
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink(missing_ok=True)
    project.coverage.mkdir(parents=True, exist_ok=True)
    return exec_file(project)


def _staged_classes(project: Project, dump: Path, out: Path) -> Path:
    """The classes to report on: every class the agent saw, as defined, and the build's class file of each applet
    class no test loaded (it counts as not covered rather than not existing)."""
    staged = out / "classfiles"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(dump, staged)
    # the agent names its dumps <Class>.<class id>.class
    seen = {path.relative_to(staged).parent / path.name.split(".", 1)[0] for path in staged.rglob("*.class")}
    for package in load_manifest(project.manifest).packages:
        folder = Path(*package.java.split("."))
        for original in sorted((project.sim_classes / folder).glob("*.class")):
            if folder / original.stem not in seen:
                (staged / folder).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(original, staged / folder / original.name)
    return staged


def _staged_sources(project: Project, out: Path) -> Path:
    """The applets' sources laid out by Java package (applets/<folder>/X.java -> cardsuite/<pkg>/X.java),
    the tree JaCoCo looks sources up in."""
    staged = out / "sources"
    shutil.rmtree(staged, ignore_errors=True)
    for package in load_manifest(project.manifest).packages:
        target = staged.joinpath(*package.java.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted(package.source_dir(project.applets).glob("*.java")):
            shutil.copyfile(source, target / source.name)
    return staged


def _counters(element: ElementTree.Element) -> dict[str, Counter]:
    return {c.get("type", ""): Counter(int(c.get("covered", 0)), int(c.get("missed", 0)))
            for c in element.findall("counter")}


def read_summary(xml_report: Path) -> CoverageSummary:
    root = ElementTree.parse(xml_report).getroot()  # JaCoCo's own report of files we just wrote
    totals = _counters(root)
    packages = {p.get("name", "").replace("/", "."): _counters(p) for p in root.findall("package")}
    return CoverageSummary(totals.get("LINE", Counter(0, 0)), totals.get("BRANCH", Counter(0, 0)), packages)


def write_report(project: Project, exec_path: Path | None = None, out: Path | None = None) -> CoverageSummary:
    """HTML (``out``/html), XML (``out``/coverage.xml) and ``out``/summary.json from the run's data; ``out`` is
    build/coverage unless given."""
    out = out or project.coverage
    out.mkdir(parents=True, exist_ok=True)
    exec_path = exec_path or exec_file(project)
    classes = class_dump(exec_path.resolve())
    if not exec_path.exists() or not classes.is_dir():
        raise ToolchainError(f"no coverage data in {exec_path}: run the tests with {ENV_COVERAGE}={exec_path}")
    html, xml = out / "html", out / "coverage.xml"
    shutil.rmtree(html, ignore_errors=True)
    cmd = ["java", "-jar", str(project.jacoco_jar("cli")), "report", str(exec_path),
           "--classfiles", str(_staged_classes(project, classes, out)),
           "--sourcefiles", str(_staged_sources(project, out)), "--html", str(html), "--xml", str(xml),
           "--name", "cardsuite applets"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolchainError(f"JaCoCo's report failed:\n{(done.stdout + done.stderr).strip()}")
    summary = read_summary(xml)
    (out / "summary.json").write_text(json.dumps(asdict(summary), indent=2) + "\n")
    return summary
