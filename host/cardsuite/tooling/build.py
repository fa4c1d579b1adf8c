"""The build pipeline: simulator classes (javac against jCardSim's API, always) and CAP/EXP files
(ant-javacard with the Oracle kit, where present), library packages first, incremental."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cardsuite.errors import ToolchainError
from cardsuite.project import Project
from cardsuite.tooling.manifest import Manifest, PackageSpec, load_manifest
from cardsuite.tooling.toolchain import (
    CapToolchain,
    converter_errors,
    explain_converter_errors,
    java_major,
    locate_cap_toolchain,
)

Log = Callable[[str], None]
# The bridge uses jdk.net.ExtendedSocketOptions (JDK 10+); applets must stay Java 8 class files.
BRIDGE_RELEASE = "11"
APPLET_RELEASE = "8"
# Every JVM the build starts is a short-lived tool: the JIT's first tier (C1) only, the serial collector.
TOOL_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@dataclass
class BuildResult:
    compiled: list[str] = field(default_factory=list)
    converted: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    # wall seconds of each step that ran (javac runs, each ant group): where a build's time went
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def caps_built(self) -> bool:
        return not self.missing


def _fingerprint(paths: list[Path], *extra: str) -> str:
    digest = hashlib.sha256()
    for value in extra:
        digest.update(value.encode() + b"\0")
    for path in sorted(paths):
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _stamp_ok(stamp: Path, fingerprint: str, outputs: list[Path]) -> bool:
    return stamp.exists() and stamp.read_text() == fingerprint and all(p.exists() for p in outputs)


def _java_sources(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.java"))


@dataclass(frozen=True)
class JavacRun:
    """One compilation of the simulator's classes, stamped with the fingerprint of what it reads."""

    name: str  # the build step, as BuildResult.compiled lists it
    what: str  # as the log says it
    sources: tuple[Path, ...]
    source_dirs: tuple[Path, ...]  # the folders the sources are all the .java files of
    classpath: tuple[str, ...]
    output: Path
    release: str

    @property
    def stamp(self) -> Path:
        return self.output.parent / f".{self.output.name}.fingerprint"

    def fingerprint(self) -> str:
        return _fingerprint(list(self.sources), self.release, _java_binary(), *self.classpath)


def _javac_run(name: str, what: str, *, folders: list[Path], classpath: list[str], output: Path,
               release: str) -> JavacRun:
    sources: list[Path] = []
    for folder in folders:
        found = _java_sources(folder)
        if not found:
            raise ToolchainError(f"{what}: no .java files in {folder}")
        sources += found
    return JavacRun(name, what, tuple(sources), tuple(folders), tuple(classpath), output, release)


def simulator_javac_runs(project: Project, manifest: Manifest) -> list[JavacRun]:
    """The bridge (Java 11, jCardSim and the JDK's own API), its test applets and the suite's packages (Java 8 class
    files against jCardSim's Java Card API: what the simulator executes)."""
    jcardsim = [str(project.jcardsim_jar())]
    return [
        _javac_run("simulator bridge", "simulator bridge", folders=[project.bridge_sources],
                   classpath=project.java_classpath(), output=project.bridge_classes, release=BRIDGE_RELEASE),
        _javac_run("bridge test applets", "bridge test applets", folders=[project.bridge_test_applets],
                   classpath=jcardsim, output=project.bridge_test_classes, release=APPLET_RELEASE),
        _javac_run("simulator applet classes", "applets for the simulator",
                   folders=[package.source_dir(project.applets) for package in manifest.build_order()],
                   classpath=jcardsim, output=project.sim_classes, release=APPLET_RELEASE),
    ]


def _javac_target(index: int, run: JavacRun) -> str:
    """An ant target compiling ``run`` with javac's own defaults, as the command line would (line numbers and
    source file names, no local variables), in ant's JVM."""
    from xml.sax.saxutils import quoteattr
    sources = "".join(f"\n      <src path={quoteattr(str(folder))}/>" for folder in run.source_dirs)
    classpath = "".join(f"\n        <pathelement location={quoteattr(entry)}/>" for entry in run.classpath)
    return (f'  <target name="javac-{index}">\n'
            f'    <javac destdir={quoteattr(str(run.output))} release="{run.release}" includeantruntime="false"\n'
            f'           fork="false" nowarn="true" encoding="UTF-8" debug="true" debuglevel="lines,source">'
            f'{sources}\n      <classpath>{classpath}\n      </classpath>\n    </javac>\n  </target>\n')


def compile_simulator(project: Project, runs: list[JavacRun], log: Log) -> None:
    """The given javac runs one after the other in one JVM (ant's javac task, in its own process): one JVM start
    and one JIT warm-up for all instead of one each, about a second of CPU a run on this machine. Each output
    folder is emptied first, so classes of deleted sources do not linger; each stamp written once it compiled."""
    for run in runs:
        log(f"compiling {run.what} ({len(run.sources)} sources)")
        if run.output.exists():
            for old in run.output.rglob("*.class"):
                old.unlink()
        run.output.mkdir(parents=True, exist_ok=True)
    ant_file = project.build / "ant" / "simulator.xml"
    ant_file.parent.mkdir(parents=True, exist_ok=True)
    ant_file.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<!-- Generated by the build (tooling/build.py) for '
                        'the simulator\'s classes: edit that, not this. -->\n<project name="simulator">\n'
                        + "".join(_javac_target(i, run) for i, run in enumerate(runs)) + "</project>\n")
    output, status = _run_ant_targets(ant_file, [f"javac-{i}" for i in range(len(runs))])
    if status != 0:
        started = [int(m.group(1)) for m in re.finditer(r"^javac-(\d+):$", output, re.MULTILINE)]
        failed = runs[started[-1]] if started else runs[0]
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        raise ToolchainError(f"javac ({failed.what}) failed (exit {status}):\n" + "\n".join(lines[-40:]))
    for run in runs:
        run.stamp.write_text(run.fingerprint())


# ---------------------------------------------------------------- CAP conversion
#
# Where a clean build's time went (2 cores): one `ant` JVM per package, each compiling its package cold,
# forking a converter JVM and loading the verifier again, about 2 s a package. Now one `ant` run per worker
# converts a whole group of packages in one warm JVM; the groups (packages linked by imports stay together,
# in build order) run side by side, one per core, next to the simulator's javac runs; every JVM is a
# short-lived tool, so the JIT stops at its first tier (C1), which halves the CPU they burn. Then (issue 13)
# the simulator's three javac runs share one JVM. ant-javacard still forks one converter JVM per package
# (the build goes through it, as the mission says); that is most of what a clean build has left.

_TARGET_LINE = re.compile(r"^(?:cap|verify)-(\S+):$")
_VERIFIED = re.compile(r"Verification completed with \d+ warnings? and 0 errors")


@dataclass(frozen=True)
class CapOutputs:
    cap: Path
    jca: Path
    export: Path
    jar: Path
    classes: Path
    exp_file: Path


def cap_outputs(project: Project, package: PackageSpec) -> CapOutputs:
    export = project.exp_dir / package.name
    last = package.java.rsplit(".", 1)[-1]
    return CapOutputs(
        cap=project.cap_dir / f"{package.name}.cap",
        jca=project.build / "jca" / f"{package.name}.jca",
        export=export,
        jar=export / f"{last}.jar",
        classes=project.build / "ant" / "classes" / package.name,
        exp_file=export.joinpath(*package.java.split("."), "javacard", f"{last}.exp"),
    )


def _template(project: Project) -> Path:
    return project.root / "ant" / "build.xml.j2"


def render_ant_file(project: Project, manifest: Manifest, toolchain: CapToolchain) -> Path:
    import jinja2  # only when something is converted: the no-op build does not pay for it

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(project.root / "ant"),
        autoescape=jinja2.select_autoescape(["xml", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    packages = []
    for package in manifest.build_order():
        out = cap_outputs(project, package)
        imported = [cap_outputs(project, manifest.package(i)) for i in package.imports]
        packages.append({
            "target": f"cap-{package.name}",
            "name": package.name,
            "java": package.java,
            "library": package.library,
            "aid": package.aid.hex().upper(),
            "version": package.version,
            "sources": package.source_dir(project.applets),
            "classes": out.classes,
            "cap": out.cap,
            "jca": out.jca,
            "export": out.export,
            "jar": out.jar,
            "exp_file": out.exp_file,
            "applets": [{"qualified": package.qualified(a), "aid": a.aid.hex().upper()} for a in package.applets],
            "imports": [{"export": i.export, "jar": i.jar, "exp_file": i.exp_file} for i in imported],
        })
    text = env.get_template("build.xml.j2").render(
        root=project.root, ant_javacard=toolchain.ant_javacard, kit=toolchain.kit.path,
        kit_lib=toolchain.kit.path / "lib", api_jars=toolchain.kit.api_jars(manifest.targetsdk),
        targetsdk=manifest.targetsdk, cap_dir=project.cap_dir, packages=packages,
    )
    target = project.build / "ant" / "build.xml"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return target


def verifier_errors(output: str) -> list[str]:
    """What Oracle's off-card verifier (run by each package's Ant target under the task name `verifycap`)
    found wrong; its exit status is 0 even on errors, so its summary line is required and read."""
    lines = [line.split("]", 1)[1].strip() for line in output.splitlines() if line.lstrip().startswith("[verifycap]")]
    if not lines:
        return ["the off-card verifier did not run"]
    severe = [line.replace("[ SEVERE ]", "").strip() for line in lines if "[ SEVERE ]" in line]
    if severe or not any(_VERIFIED.search(line) for line in lines):
        summary = [line for line in lines if "Verification completed" in line]
        return ["off-card verifier: " + e for e in (severe + summary or ["no verification summary in its output"])]
    return []


def _split_by_target(output: str) -> dict[str, str]:
    """ant's output of several targets, per package (the lines under each `cap-NAME:` header)."""
    parts: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        header = _TARGET_LINE.match(line)
        if header:
            current = parts.setdefault(header.group(1), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in parts.items()}


def _tool_env() -> dict[str, str]:
    options = " ".join(filter(None, [os.environ.get("JAVA_TOOL_OPTIONS", ""), TOOL_JVM_OPTIONS]))
    return dict(os.environ, JAVA_TOOL_OPTIONS=options)


def _run_ant(ant_file: Path, packages: list[PackageSpec], action: str = "cap") -> tuple[str, int]:
    """ant on the packages' targets in one JVM: its whole output and its exit status."""
    return _run_ant_targets(ant_file, [f"{action}-{p.name}" for p in packages])


def _run_ant_targets(ant_file: Path, targets: list[str]) -> tuple[str, int]:
    """ant on the targets in one JVM: its whole output (into a file, not a pipe, so that runs side by side never
    wait on a reader) and its exit status."""
    import subprocess  # here, not at the top: a build with nothing to do starts no process
    import tempfile

    with tempfile.TemporaryFile("w+", encoding="utf-8") as output:
        try:
            status = subprocess.run(["ant", "-noinput", "-f", str(ant_file), *targets], stdout=output,
                                    stderr=subprocess.STDOUT, env=_tool_env()).returncode
        except FileNotFoundError:
            raise ToolchainError("ant not found on PATH; run `invoke setup`") from None
        output.seek(0)
        return output.read(), status


def _check_group(project: Project, packages: list[PackageSpec], output: str, returncode: int) -> list[str]:
    """Each package's log written, its CAP and verifier checked: the packages that succeeded, in order, up to
    the first failure, which raises ToolchainError with the converter's or verifier's message."""
    segments = _split_by_target(output)
    done: list[str] = []
    for package in packages:
        segment = segments.get(package.name)
        if segment is None:  # ant stopped before this target
            tail = [line.strip() for line in output.splitlines() if line.strip()][-8:]
            raise ToolchainError(explain_converter_errors(package.name, tail or ["ant did not run the target"]))
        log_file = project.reports / "convert" / f"{package.name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(segment)
        errors = converter_errors(segment)
        if not errors and not cap_outputs(project, package).cap.exists():
            errors = ["no CAP file was written"]
        if not errors:
            errors = verifier_errors(segment)
        if errors:
            raise ToolchainError(explain_converter_errors(package.name, errors) + f"\nFull log: {log_file}")
        done.append(package.name)
    if returncode != 0:
        tail = [line.strip() for line in output.splitlines() if line.strip()][-8:]
        raise ToolchainError(explain_converter_errors(packages[-1].name, tail))
    return done


def plan_groups(manifest: Manifest, stale: list[PackageSpec], workers: int,
                weight: Callable[[PackageSpec], int]) -> list[list[PackageSpec]]:
    """The stale packages split into at most ``workers`` groups for side-by-side ant runs: packages linked by
    an import (both stale) always in the same group, so a library is converted before its users; the
    heaviest chains first onto the lightest group. Each group keeps the manifest's build order."""
    names = {p.name for p in stale}
    component = {name: name for name in names}

    def root(name: str) -> str:
        while component[name] != name:
            name = component[name]
        return name

    for package in stale:
        for imported in package.imports:
            if imported in names:
                component[root(package.name)] = root(imported)
    chains: dict[str, list[PackageSpec]] = {}
    for package in stale:  # stale is in build order, and so each chain
        chains.setdefault(root(package.name), []).append(package)
    groups: list[list[PackageSpec]] = [[] for _ in range(max(1, min(workers, len(chains))))]
    loads = [0] * len(groups)
    for chain in sorted(chains.values(), key=lambda c: -sum(weight(p) for p in c)):
        lightest = loads.index(min(loads))
        groups[lightest] += chain
        loads[lightest] += sum(weight(p) for p in chain)
    order = {p.name: i for i, p in enumerate(manifest.build_order())}
    return [sorted(g, key=lambda p: order[p.name]) for g in groups if g]


def convert_groups(project: Project, ant_file: Path, groups: list[list[PackageSpec]], log: Log, *,
                   on_done: Callable[[str], None], timings: dict[str, float] | None = None) -> None:
    """Runs one ant per group side by side; ``on_done`` for every package converted and verified; the first
    failure (in group order) raised after all runs have ended, so no ant is left writing."""
    (project.build / "jca").mkdir(parents=True, exist_ok=True)
    for group in groups:
        for package in group:
            # a stale CAP must never pass for a fresh one, nor classes of a deleted source or an old API
            cap_outputs(project, package).cap.unlink(missing_ok=True)
            shutil.rmtree(cap_outputs(project, package).classes, ignore_errors=True)
            log(f"converting {package.java} -> {cap_outputs(project, package).cap.relative_to(project.root)}")
    steps = {", ".join(p.name for p in group): (lambda g=group: _run_ant(ant_file, g)) for group in groups}
    runs = _side_by_side(steps, timings if timings is not None else {}, prefix="ant: ")
    failure: ToolchainError | None = None
    for group, (output, status) in zip(groups, runs.values(), strict=True):
        try:
            for name in _check_group(project, group, output, status):
                on_done(name)
        except ToolchainError as exc:
            failure = failure or exc
    if failure:
        raise failure


def convert_package(project: Project, ant_file: Path, package: PackageSpec, log: Log) -> None:
    """One package alone (its imports already converted)."""
    convert_groups(project, ant_file, [[package]], log, on_done=lambda _: None)


def verify_package(project: Project, ant_file: Path, package: PackageSpec) -> None:
    """Oracle's off-card verifier on the package's CAP as it is now, against the export files of the packages it
    imports as they are now (ant's verify-NAME target; the same check each conversion ends with)."""
    output, status = _run_ant(ant_file, [package], action="verify")
    errors = verifier_errors(_split_by_target(output).get(package.name, output))
    if errors or status != 0:
        raise ToolchainError(f"verifying package {package.name!r} failed:\n  " + "\n  ".join(
            errors or [line.strip() for line in output.splitlines() if line.strip()][-8:]))


def _java_binary() -> str:
    """The JDK in use, for the fingerprints: another JDK converts again (and is checked against the kit)."""
    found = shutil.which("java")
    return os.path.realpath(found) if found else "no java"


def cap_fingerprints(project: Project, manifest: Manifest, toolchain: CapToolchain) -> dict[str, str]:
    """Per package: its sources, the kit, ant-javacard, the JDK, the build template, target, AIDs, version,
    applets, and the fingerprints of the packages it imports (a changed library converts its users again)."""
    fingerprints: dict[str, str] = {}
    common = (manifest.targetsdk, str(toolchain.kit.path), str(toolchain.ant_javacard), _java_binary(),
              TOOL_JVM_OPTIONS)
    template = [_template(project)]
    for package in manifest.build_order():
        sources = _java_sources(package.source_dir(project.applets))
        fingerprints[package.name] = _fingerprint(
            sources + template, *common,
            package.aid.hex(), package.version, json.dumps([[a.class_name, a.aid.hex()] for a in package.applets]),
            *(fingerprints[i] for i in package.imports),
        )
    return fingerprints


def _conversion_cost(project: Project, package: PackageSpec) -> int:
    """A package's conversion time, in source bytes: a part every package costs (compile, convert, verify; about
    1 s when the converter had a JVM of its own) and a part growing with its source, 1 s per 60 KB."""
    return 60_000 + sum(s.stat().st_size for s in _java_sources(package.source_dir(project.applets)))


def _stamp_path(project: Project, package: PackageSpec) -> Path:
    return project.build / "stamps" / f"{package.name}.cap.fingerprint"


def _cap_plan(project: Project, manifest: Manifest, toolchain: CapToolchain,
              result: BuildResult) -> tuple[dict[str, str], list[PackageSpec]]:
    """The packages' fingerprints and those whose CAP they do not prove up to date (the others noted in
    ``result``)."""
    fingerprints = cap_fingerprints(project, manifest, toolchain)
    stale: list[PackageSpec] = []
    for package in manifest.build_order():
        out = cap_outputs(project, package)
        if _stamp_ok(_stamp_path(project, package), fingerprints[package.name], [out.cap, out.export]):
            result.up_to_date.append(package.name)
        else:
            stale.append(package)
    return fingerprints, stale


def build_caps(project: Project, manifest: Manifest, toolchain: CapToolchain, result: BuildResult,
               log: Log, *, workers: int | None = None) -> None:
    fingerprints, stale = _cap_plan(project, manifest, toolchain, result)
    if stale:
        _convert_stale(project, manifest, toolchain, (fingerprints, stale), result, log=log, workers=workers)


def _convert_stale(project: Project, manifest: Manifest, toolchain: CapToolchain,
                   plan: tuple[dict[str, str], list[PackageSpec]], result: BuildResult, *, log: Log,
                   workers: int | None = None) -> None:
    """Converts the stale packages of ``plan`` (from _cap_plan) in side-by-side ant runs."""
    fingerprints, stale = plan
    toolchain.kit.check(manifest.targetsdk, java_major())
    ant_file = render_ant_file(project, manifest, toolchain)
    groups = plan_groups(manifest, stale, workers or os.cpu_count() or 1, lambda p: _conversion_cost(project, p))

    def done(name: str) -> None:
        stamp = _stamp_path(project, manifest.package(name))
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(fingerprints[name])
        result.converted.append(name)

    convert_groups(project, ant_file, groups, log, on_done=done, timings=result.timings)


def _side_by_side(steps: dict[str, Callable[[], object]], timings: dict[str, float],
                  prefix: str = "") -> dict[str, object]:
    """Runs each step in a thread of its own (each waits on its own tool process); the results by name, or the
    first step's error (in the given order) once all have ended."""
    import threading  # here, not at the top: a build with nothing to do starts no thread

    outcomes: dict[str, object] = {}
    errors: dict[str, BaseException] = {}

    def run_step(name: str) -> None:
        started = time.perf_counter()
        try:
            outcomes[name] = steps[name]()
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors[name] = exc
        timings[prefix + name] = round(time.perf_counter() - started, 3)

    threads = [threading.Thread(target=run_step, args=(name,), name=f"build: {name}") for name in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in steps:
        if name in errors:
            raise errors[name]
    return {name: outcomes[name] for name in steps}


def build(project: Project, require_cap: bool = False, log: Log = print) -> BuildResult:
    """The simulator's classes (three javac runs in one JVM) and the CAP conversions side by side, each its own
    process; what the fingerprints prove up to date is looked at first, in this thread, so that a build with
    nothing to do starts no thread and no process."""
    manifest = load_manifest(project.manifest)
    result = BuildResult()
    toolchain, problems = locate_cap_toolchain(project)
    result.missing = problems
    stale_runs = [javac for javac in simulator_javac_runs(project, manifest)
                  if not _stamp_ok(javac.stamp, javac.fingerprint(), [javac.output])]
    steps: dict[str, Callable[[], object]] = {}
    if stale_runs:
        steps["simulator classes"] = lambda: compile_simulator(project, stale_runs, log)
    if toolchain:
        plan = _cap_plan(project, manifest, toolchain, result)
        if plan[1]:
            steps["CAP files"] = lambda: _convert_stale(project, manifest, toolchain, plan, result, log=log)
    if steps:
        _side_by_side(steps, result.timings)
    result.compiled += [javac.name for javac in stale_runs]
    if toolchain is None and require_cap:
        raise ToolchainError("cannot build CAP files:\n- " + "\n- ".join(problems))
    return result
