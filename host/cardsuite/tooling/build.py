"""The build pipeline: simulator classes (javac against jCardSim's API, always) and CAP/EXP files
(ant-javacard with the Oracle kit, where present), library packages first, incremental."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from cardsuite.errors import ToolchainError
from cardsuite.project import Project
from cardsuite.tooling.manifest import Manifest, PackageSpec, load_manifest
from cardsuite.tooling.toolchain import (
    CapToolchain,
    converter_errors,
    explain_converter_errors,
    java_major,
    locate_cap_toolchain,
    run,
)

Log = Callable[[str], None]
# The bridge uses jdk.net.ExtendedSocketOptions (JDK 10+); applets must stay Java 8 class files.
BRIDGE_RELEASE = "11"
APPLET_RELEASE = "8"


@dataclass
class BuildResult:
    compiled: list[str] = field(default_factory=list)
    converted: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

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


def compile_java(
    sources: list[Path], classpath: list[str], output: Path, *, release: str, what: str, log: Log
) -> bool:
    """javac with a fingerprint stamp: returns False when nothing changed since the last compile."""
    stamp = output.parent / f".{output.name}.fingerprint"
    fingerprint = _fingerprint(sources, release, *classpath)
    if _stamp_ok(stamp, fingerprint, [output]):
        return False
    log(f"compiling {what} ({len(sources)} sources)")
    if output.exists():
        # a full rebuild, so classes of deleted sources do not linger
        for old in output.rglob("*.class"):
            old.unlink()
    output.mkdir(parents=True, exist_ok=True)
    cmd = ["javac", "--release", release, "-nowarn", "-encoding", "UTF-8", "-d", str(output)]
    if classpath:
        cmd += ["-cp", ":".join(classpath)]
    run(cmd + [str(s) for s in sources], what=f"javac ({what})")
    stamp.write_text(fingerprint)
    return True


def compile_bridge(project: Project, log: Log) -> bool:
    sources = _java_sources(project.bridge_sources)
    if not sources:
        raise ToolchainError(f"no simulator bridge sources in {project.bridge_sources}")
    return compile_java(sources, project.java_classpath(), project.bridge_classes, release=BRIDGE_RELEASE,
                        what="simulator bridge", log=log)


def compile_bridge_test_applets(project: Project, log: Log) -> bool:
    """The bridge's test applets, Java 8 class files against jCardSim's API like every applet."""
    sources = _java_sources(project.bridge_test_applets)
    if not sources:
        raise ToolchainError(f"no bridge test applets in {project.bridge_test_applets}")
    return compile_java(sources, [str(project.jcardsim_jar())], project.bridge_test_classes,
                        release=APPLET_RELEASE, what="bridge test applets", log=log)


def compile_sim_classes(project: Project, manifest: Manifest, log: Log) -> bool:
    """All packages in one javac run against jCardSim's Java Card API: what the simulator executes."""
    sources: list[Path] = []
    for package in manifest.build_order():
        found = _java_sources(package.source_dir(project.applets))
        if not found:
            folder = package.source_dir(project.applets)
            raise ToolchainError(f"package {package.name!r} has no .java files in {folder}")
        sources += found
    return compile_java(sources, [str(project.jcardsim_jar())], project.sim_classes, release=APPLET_RELEASE,
                        what="applets for the simulator", log=log)


# ---------------------------------------------------------------- CAP conversion


@dataclass(frozen=True)
class CapOutputs:
    cap: Path
    jca: Path
    export: Path
    jar: Path
    classes: Path


def cap_outputs(project: Project, package: PackageSpec) -> CapOutputs:
    return CapOutputs(
        cap=project.cap_dir / f"{package.name}.cap",
        jca=project.build / "jca" / f"{package.name}.jca",
        export=project.exp_dir / package.name,
        jar=project.exp_dir / package.name / f"{package.java.rsplit('.', 1)[-1]}.jar",
        classes=project.build / "ant" / "classes" / package.name,
    )


def render_ant_file(project: Project, manifest: Manifest, toolchain: CapToolchain) -> Path:
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
        packages.append({
            "target": f"cap-{package.name}",
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
            "applets": [{"qualified": package.qualified(a), "aid": a.aid.hex().upper()} for a in package.applets],
            "imports": [
                {"export": cap_outputs(project, manifest.package(i)).export,
                 "jar": cap_outputs(project, manifest.package(i)).jar}
                for i in package.imports
            ],
        })
    text = env.get_template("build.xml.j2").render(
        root=project.root, ant_javacard=toolchain.ant_javacard, kit=toolchain.kit.path,
        targetsdk=manifest.targetsdk, cap_dir=project.cap_dir, packages=packages,
    )
    target = project.build / "ant" / "build.xml"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return target


def convert_package(project: Project, ant_file: Path, package: PackageSpec, log: Log) -> None:
    out = cap_outputs(project, package)
    out.cap.unlink(missing_ok=True)  # a stale CAP must never pass for a fresh one
    # javac only adds class files: one whose source moved or was deleted would be converted again
    shutil.rmtree(out.classes, ignore_errors=True)
    (project.build / "jca").mkdir(parents=True, exist_ok=True)
    log(f"converting {package.java} -> {out.cap.relative_to(project.root)}")
    try:
        result = subprocess.run(["ant", "-noinput", "-f", str(ant_file), f"cap-{package.name}"],
                                capture_output=True, text=True)
    except FileNotFoundError:
        raise ToolchainError("ant not found on PATH; run `invoke setup`") from None
    output = result.stdout + result.stderr
    log_file = project.reports / "convert" / f"{package.name}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(output)
    errors = converter_errors(output)
    if result.returncode != 0 and not errors:
        errors = [line.strip() for line in output.splitlines() if line.strip()][-8:]
    if errors or not out.cap.exists():
        raise ToolchainError(explain_converter_errors(package.name, errors or ["no CAP file was written"])
                             + f"\nFull log: {log_file}")


def build_caps(project: Project, manifest: Manifest, toolchain: CapToolchain, result: BuildResult,
               log: Log) -> None:
    toolchain.kit.check(manifest.targetsdk, java_major())
    ant_file = render_ant_file(project, manifest, toolchain)
    fingerprints: dict[str, str] = {}
    for package in manifest.build_order():
        out = cap_outputs(project, package)
        sources = _java_sources(package.source_dir(project.applets))
        fingerprint = _fingerprint(
            sources, manifest.targetsdk, str(toolchain.kit.path), str(toolchain.ant_javacard),
            package.aid.hex(), package.version, json.dumps([[a.class_name, a.aid.hex()] for a in package.applets]),
            *(fingerprints[i] for i in package.imports),
        )
        fingerprints[package.name] = fingerprint
        stamp = project.build / "stamps" / f"{package.name}.cap.fingerprint"
        if _stamp_ok(stamp, fingerprint, [out.cap, out.export]):
            result.up_to_date.append(package.name)
            continue
        convert_package(project, ant_file, package, log)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(fingerprint)
        result.converted.append(package.name)


def build(project: Project, require_cap: bool = False, log: Log = print) -> BuildResult:
    manifest = load_manifest(project.manifest)
    result = BuildResult()
    if compile_bridge(project, log):
        result.compiled.append("simulator bridge")
    if compile_bridge_test_applets(project, log):
        result.compiled.append("bridge test applets")
    if compile_sim_classes(project, manifest, log):
        result.compiled.append("simulator applet classes")
    toolchain, problems = locate_cap_toolchain(project)
    if toolchain is None:
        result.missing = problems
        if require_cap:
            raise ToolchainError("cannot build CAP files:\n- " + "\n- ".join(problems))
        return result
    build_caps(project, manifest, toolchain, result, log)
    return result
