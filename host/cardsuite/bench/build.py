"""Build benchmark (issue 13): a clean build with the Oracle SDK (simulator classes, every CAP converted and
verified) and a no-op build, each in a fresh Python process as `invoke build` runs it, on a scratch copy of
the project's sources, so the checkout's own build/ is left alone. Written to build/bench/build.json."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cardsuite.bench.stats import summary
from cardsuite.errors import ToolchainError
from cardsuite.project import Project
from cardsuite.tooling.manifest import load_manifest
from cardsuite.tooling.toolchain import locate_cap_toolchain

TARGETS = {"clean_median_ms_max": 12_000, "noop_median_ms_max": 300}
# what a build reads; everything else of the checkout stays out of the copy
SOURCES = ("applets", "ant", "host/simbridge/src", "host/simbridge/test-applets", "host/simbridge/pom.xml",
           "cardsuite.local.toml")
_BUILD = """
import json, sys, time
started = time.perf_counter()
from pathlib import Path
from cardsuite.project import Project
from cardsuite.tooling.build import build
result = build(Project(Path(sys.argv[1])), require_cap=True, log=lambda _: None)
print(json.dumps({"seconds": time.perf_counter() - started, "converted": result.converted,
                  "compiled": result.compiled, "timings": result.timings}))
"""


# what `invoke build` does before build() itself: invoke's own start (its import and tasks.py's), then the setup
# task's check (answered by its stamp when nothing changed, tasks._setup_current)
_INVOKE = """
import importlib.util, json, sys, time
started = time.perf_counter()
import invoke
spec = importlib.util.spec_from_file_location("tasks", sys.argv[1])
tasks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tasks)
loaded = time.perf_counter()
current = tasks._setup_current()
print(json.dumps({"import_seconds": loaded - started, "setup_check_seconds": time.perf_counter() - loaded,
                  "setup_current": current}))
"""


def scratch_project(project: Project, folder: Path) -> Project:
    """The sources a build reads, copied under ``folder``; deps/ linked, not copied (Maven's jars)."""
    for name in SOURCES:
        source = project.root / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        elif source.exists():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, folder / name)
    (folder / "deps").symlink_to(project.root / "deps")
    return Project(folder)


def _timed_build(project: Project) -> dict:
    """One build in a fresh interpreter (this package first on its path); its wall time from outside."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                       os.environ.get("PYTHONPATH", "")]))
    return _timed_python(project, [_BUILD, str(project.root)], "the benchmarked build", env)


def _timed_invoke_start(project: Project) -> dict:
    """invoke's start and the setup check as `invoke build` runs them, in a fresh interpreter, without running a
    task (nothing installed, nothing built)."""
    return _timed_python(project, [_INVOKE, str(project.root / "tasks.py")], "invoke's start")


def _timed_python(project: Project, script: list[str], what: str, env: dict[str, str] | None = None) -> dict:
    """``python -c SCRIPT ARGS`` in the project: the figures its last output line holds (JSON), and its wall
    time from outside."""
    clock = time.perf_counter
    started = clock()
    done = subprocess.run([sys.executable, "-c", *script], capture_output=True, text=True, env=env,
                          cwd=project.root)
    wall = clock() - started
    if done.returncode != 0:
        raise ToolchainError(f"{what} failed:\n{done.stderr.strip()[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["seconds_outside"] = wall
    return figures


def run_build_bench(project: Project, clean_runs: int = 3, noop_runs: int = 10) -> dict:
    toolchain, problems = locate_cap_toolchain(project)
    if toolchain is None:
        raise ToolchainError("the build benchmark needs the Oracle SDK and ant-javacard:\n- " + "\n- ".join(problems))
    packages = [p.name for p in load_manifest(project.manifest).packages]
    clean: list[dict] = []
    noop: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="cardsuite-build-bench-") as folder:
        scratch = scratch_project(project, Path(folder))
        for _ in range(clean_runs):
            shutil.rmtree(scratch.build, ignore_errors=True)
            clean.append(_timed_build(scratch))
            if sorted(clean[-1]["converted"]) != sorted(packages):
                raise ToolchainError(f"a clean build converted {clean[-1]['converted']}, not every package")
        for _ in range(noop_runs):
            noop.append(_timed_build(scratch))
            if noop[-1]["converted"] or noop[-1]["compiled"]:
                raise ToolchainError(f"a no-op build did work: {noop[-1]['compiled'] + noop[-1]['converted']}")
    clean_s = [run["seconds_outside"] for run in clean]
    noop_s = [run["seconds_outside"] for run in noop]
    starts = [_timed_invoke_start(project) for _ in range(noop_runs)] if (project.root / "tasks.py").exists() else []
    report = {
        "what": "`invoke build` without invoke: a fresh Python process building a scratch copy of the sources "
                "with the Oracle SDK (every CAP converted and verified), then with nothing changed",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.platform(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
        "packages": len(packages),
        "clean": summary(clean_s),
        "noop": summary(noop_s),
        # the fastest clean run's steps (wall seconds each; they overlap: the javac runs and ant groups run
        # side by side)
        "clean_steps_s": min(clean, key=lambda run: run["seconds_outside"])["timings"],
        "targets": TARGETS,
    }
    if starts:
        # `invoke build` with nothing to do is this plus the no-op build above: invoke's own start is not ours
        report["invoke_start"] = summary([run["seconds_outside"] for run in starts])
        report["invoke_start_import"] = summary([run["import_seconds"] for run in starts])
        report["setup_check"] = summary([run["setup_check_seconds"] for run in starts])
        report["setup_check_stamped"] = all(run["setup_current"] for run in starts)
    project.bench.mkdir(parents=True, exist_ok=True)
    out = project.bench / "build.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"build, {len(packages)} packages: clean {report['clean']['median_ms']:.0f} ms (median of {clean_runs}, "
          f"target ≤ {TARGETS['clean_median_ms_max']}), no-op {report['noop']['median_ms']:.0f} ms (median of "
          f"{noop_runs}, target ≤ {TARGETS['noop_median_ms_max']})")
    if starts:
        start, stamped = report["invoke_start"]["median_ms"], report["setup_check_stamped"]
        parts = (f"its import and tasks.py {report['invoke_start_import']['median_ms']:.0f} ms, the setup check "
                 f"{report['setup_check']['median_ms']:.1f} ms, {'stamped' if stamped else 'no stamp'}")
        print(f"  invoke's start {start:.0f} ms ({parts}): a no-op `invoke build` is about "
              f"{start + report['noop']['median_ms']:.0f} ms")
    for step, seconds in report["clean_steps_s"].items():
        print(f"  {step:60} {seconds:>7} s")
    print(f"written {out.relative_to(project.root)}")
    return report
