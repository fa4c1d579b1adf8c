"""invoke tasks: thin wrappers over cardsuite's build, simulator, test and benchmark code.

    invoke setup       Debian packages, the Python package, pinned Java libraries (idempotent, fast)
    invoke build       simulator classes always; CAP/EXP files where the Oracle SDK is configured
    invoke demo        build, then exercise an applet on the simulator in-process and over vpcd
    invoke test        the suite on the in-process simulator, then the end-to-end subset over vpcd
    invoke bench       figures into build/bench/ (transport, payments, e-cash, loading, commit buffer, build, SCMS)
    invoke sizes       CAP and load sizes (needs the Oracle SDK) into build/reports/sizes.json
    invoke coverage    the applets' line and branch coverage (JaCoCo) of a test run into build/coverage/
    invoke sim         simulated cards behind vpcd until Ctrl-C
    invoke refresh-fixtures   the CAP test fixtures from a fresh build (needs the Oracle SDK)
    invoke install     build, then deploy profiles/cards/sim-suite.toml onto a simulated card (or --card)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from invoke import Exit, task

ROOT = Path(__file__).resolve().parent
# Tasks import this checkout's package: an editable install made by `setup` in this very process is
# only seen by interpreters started after it (its .pth file is read at start-up).
sys.path.insert(0, str(ROOT / "host"))
DEPS = ROOT / "deps"
APT_PACKAGES = [
    "openjdk-17-jdk-headless", "maven", "ant", "pcscd", "vsmartcard-vpcd", "libpcsclite-dev", "swig",
    "postgresql",  # the inventory's PostgreSQL tests start a throwaway server
    "opensc",  # opensc-tool and opensc-explorer: a generic ISO 7816-4 client in tests/fs/test_fs_opensc.py
    "softhsm2",  # the SCMS's KMS token (PKCS#11)
    "chromium", "chromium-driver",  # the SCMS console's browser tests (Selenium)
]
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"


def _sh(cmd: list[str], **kwargs) -> None:
    print("+ " + " ".join(cmd), flush=True)
    status = subprocess.run(cmd, **kwargs).returncode
    if status:
        raise Exit(f"{Path(cmd[0]).name} ... exited with status {status}", code=status)


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()


def _stamped(name: str, digest: str) -> bool:
    stamp = DEPS / f".{name}.fingerprint"
    return stamp.exists() and stamp.read_text() == digest


def _stamp(name: str, digest: str) -> None:
    DEPS.mkdir(exist_ok=True)
    (DEPS / f".{name}.fingerprint").write_text(digest)


def _missing_debian_packages() -> list[str]:
    # one dpkg-query for all of them: every `invoke build` pays for this check (it exits 1 when one is unknown)
    status = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\n", *APT_PACKAGES], capture_output=True,
                            text=True)
    installed = {line.split()[0].split(":")[0] for line in status.stdout.splitlines()
                 if line.endswith("install ok installed")}
    return [package for package in APT_PACKAGES if package not in installed]


def _installed_from_here() -> bool:
    """Whether `import cardsuite` finds this checkout (another clone may have installed its own). pip's record
    of an editable install answers in 10 ms; only when it names no folder or another does a new interpreter
    (100 ms, on every `invoke build`) look."""
    import importlib.metadata
    import json
    from urllib.parse import unquote, urlparse

    try:
        record = json.loads(importlib.metadata.distribution("cardsuite").read_text("direct_url.json") or "{}")
    except importlib.metadata.PackageNotFoundError:
        return False
    if record.get("dir_info", {}).get("editable") and Path(unquote(urlparse(record.get("url", "")).path)) == ROOT:
        return True
    probe = subprocess.run([sys.executable, "-c", "import cardsuite; print(cardsuite.__file__)"],
                           capture_output=True, text=True, cwd="/")
    return probe.returncode == 0 and Path(probe.stdout.strip()).resolve().is_relative_to(ROOT / "host")


# The Debian and Python checks above cost a dpkg-query and a look through the installed distributions (0.1 s, on
# every `invoke build`); once they passed, what they found is kept as a few stats that say whether anything they
# looked at changed: dpkg rewrites its status file on every install or removal, pip writes a new record for
# every install (another clone's `pip install -e` too).
SETUP_STAMP = DEPS / ".setup.fingerprint"
DPKG_STATUS = Path("/var/lib/dpkg/status")


def _install_record() -> Path | None:
    """pip's record (direct_url.json) of the installed cardsuite distribution, if there is one."""
    import importlib.metadata

    try:
        folder = getattr(importlib.metadata.distribution("cardsuite"), "_path", None)
    except importlib.metadata.PackageNotFoundError:
        return None
    return Path(folder) / "direct_url.json" if folder else None


def _setup_state(record: Path | None) -> dict | None:
    """What a passed setup check depends on, read with stats only; None when a part of it is gone."""
    try:
        return {
            "inputs": _digest(ROOT / "pyproject.toml"),
            "packages": APT_PACKAGES, "python": sys.executable, "root": str(ROOT),
            "dpkg": DPKG_STATUS.stat().st_mtime_ns,
            "record": str(record), "record_mtime": record.stat().st_mtime_ns if record else None,
        }
    except OSError:
        return None


def _setup_current() -> bool:
    """Whether nothing the last passed setup check looked at changed since (then it would pass again)."""
    import json

    try:
        recorded = json.loads(SETUP_STAMP.read_text())
    except (OSError, ValueError):
        return False
    record = recorded.get("record") if isinstance(recorded, dict) else None
    return record not in (None, "None") and recorded == _setup_state(Path(record))


def _record_setup() -> None:
    import json

    state = _setup_state(_install_record())
    if state is not None and state["record_mtime"] is not None:
        DEPS.mkdir(exist_ok=True)
        SETUP_STAMP.write_text(json.dumps(state))


@task
def setup(c):
    """Install everything cardsuite needs; a second run checks and changes nothing."""
    current = _setup_current()  # the Debian and Python packages as the last check left them
    missing = [] if current else _missing_debian_packages()
    if missing:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        _sh(sudo + ["apt-get", "update", "-qq"], env=env)
        _sh(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)
    python = _digest(ROOT / "pyproject.toml")
    if not current and (not _stamped("python", python) or not _installed_from_here()):
        _sh([sys.executable, "-m", "pip", "install", "-q", "-e", f"{ROOT}[sim,postgres,scms,test]"])
        _stamp("python", python)
    _command_on_path()
    pom = ROOT / "host" / "simbridge" / "pom.xml"
    maven = _digest(pom)
    resolved = list((DEPS / "java").glob("jcardsim-*.jar")) and list((DEPS / "jacoco").glob("org.jacoco.*.jar"))
    if not _stamped("maven", maven) or not resolved:
        # the simulator's classpath (deps/java) is every jar there: JaCoCo's jars go to deps/jacoco instead
        for folder, selection in (("java", "-DexcludeGroupIds=org.jacoco"), ("jacoco", "-DincludeGroupIds=org.jacoco")):
            shutil.rmtree(DEPS / folder, ignore_errors=True)
            _sh(["mvn", "-q", "-B", "-f", str(pom), f"-Dmaven.repo.local={DEPS / 'm2'}",
                 f"{MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies", f"-DoutputDirectory={DEPS / folder}", selection])
        _stamp("maven", maven)
    if not current:
        _record_setup()
    print("setup: done")


def _command_on_path() -> None:
    """The `cardsuite` command in a new shell: pyenv keeps shims that only `pyenv rehash` creates."""
    if shutil.which("pyenv") and not shutil.which("cardsuite"):
        subprocess.run(["pyenv", "rehash"], check=False)
    if not shutil.which("cardsuite"):
        scripts = Path(sys.executable).parent
        print(f"setup: the `cardsuite` command is in {scripts}, which is not on PATH; add it, or run "
              "`python3 -m cardsuite`")


def _project():
    from cardsuite.project import Project

    return Project(ROOT)


def _guard(action):
    """Runs a cardsuite action, turning its errors into a one-line message and exit status 1."""
    from cardsuite.errors import CardsuiteError

    try:
        return action()
    except CardsuiteError as exc:
        raise Exit(f"Error: {exc}", code=1) from None


@task(pre=[setup], help={"require_cap": "fail when the Oracle SDK or ant-javacard is missing"})
def build(c, require_cap=False):
    """Compile the applets for the simulator and, where the SDK is configured, convert them to CAP/EXP."""
    from cardsuite.tooling.build import build as run_build

    result = _guard(lambda: run_build(_project(), require_cap=require_cap))
    if result.missing:
        print("CAP/EXP files not built (the simulator classes are):")
        for problem in result.missing:
            print(f"  - {problem}")
    else:
        built = ", ".join(result.converted) or "none"
        print(f"CAP files: converted {built}; up to date: {', '.join(result.up_to_date) or 'none'}")
    print("build: done")


@task(pre=[build])
def demo(c):
    """The main job: exercise the echo applet on the simulator, in-process and through pcscd/vpcd."""
    from cardsuite.cli.demo import run_demo

    _guard(lambda: run_demo(_project()))


@task(pre=[build], help={"card": "sim, vpcd or reader:<name>; default: sim, then the e2e subset over vpcd",
                         "k": "pytest -k expression", "x": "stop at the first failure"})
def test(c, card="", k="", x=False):
    """Run the test suite (`ruff` first, then pytest)."""
    _sh([sys.executable, "-m", "ruff", "check", "host", "tests", "tasks.py"], cwd=ROOT)
    extra = (["-k", k] if k else []) + (["-x"] if x else [])
    runs = [["--card", card]] if card else [["--card", "sim"], ["--card", "vpcd", "-m", "e2e"]]
    for run_args in runs:
        _sh([sys.executable, "-m", "pytest", "-q", *run_args, *extra], cwd=ROOT)


@task(pre=[build], help={"only": "transport, wallet, ecash, load, commit, build or scms; default: all seven",
                         "terminals": "scms: terminals at once [default 50]"})
def bench(c, only="", terminals=50):
    """Figures into build/bench/: transport.json (round trips), wallet.json (payments), ecash.json,
    load.json (GlobalPlatform loads and the profile deploy), commit.json (largest transaction per command),
    build.json (clean and no-op builds, SDK needed), scms.json (remote post-issuances through two servers on
    PostgreSQL) and fleet.json (a 100,000-card inventory's queries)."""
    from functools import partial

    from cardsuite.bench.build import run_build_bench
    from cardsuite.bench.commit import run_commit_bench
    from cardsuite.bench.ecash import run_ecash_bench
    from cardsuite.bench.load import run_load_bench
    from cardsuite.bench.scms import run_scms_bench
    from cardsuite.bench.transport import run_transport_bench
    from cardsuite.bench.wallet import run_wallet_bench

    runs = {"transport": run_transport_bench, "wallet": run_wallet_bench, "ecash": run_ecash_bench,
            "load": run_load_bench, "commit": run_commit_bench, "build": run_build_bench,
            "scms": partial(run_scms_bench, terminals=int(terminals))}
    if only and only not in runs:
        raise Exit(f"Error: --only takes one of {', '.join(runs)}", code=1)
    for name, run_bench in runs.items():
        if not only or only == name:
            _guard(lambda run_bench=run_bench: run_bench(_project()))


@task(pre=[build])
def sizes(c):
    """CAP and load sizes of every package next to the paper's Table 4, in build/reports/sizes.json; then each
    applet's memory footprint measured by the simulator bridge (install, CREATE FILE), in footprint.json."""
    from cardsuite.bench.footprint import run_footprint
    from cardsuite.tooling.sizes import format_footprint, run_sizes

    report = _guard(lambda: run_sizes(_project()))
    print(format_footprint(_guard(lambda: run_footprint(_project())), report))


@task(pre=[build], help={"vpcd": "also run the end-to-end subset over vpcd, under the same agent",
                         "k": "pytest -k expression"})
def coverage(c, vpcd=False, k=""):
    """JaCoCo on every simulator JVM of a pytest run (in-process, and over vpcd with --vpcd): the applets' line
    and branch coverage as build/coverage/html/index.html, coverage.xml and summary.json."""
    from cardsuite import settings
    from cardsuite.tooling.coverage import fresh_exec_file, write_report

    project = _project()
    exec_path = fresh_exec_file(project)
    env = {**os.environ, settings.ENV_COVERAGE: str(exec_path)}
    runs = [["--card", "sim"]] + ([["--card", "vpcd", "-m", "e2e"]] if vpcd else [])
    failed = 0
    for run_args in runs:
        cmd = [sys.executable, "-m", "pytest", "-q", *run_args, *(["-k", k] if k else [])]
        print("+ " + " ".join(cmd), flush=True)
        failed = failed or subprocess.run(cmd, cwd=ROOT, env=env).returncode
    summary = _guard(lambda: write_report(project, exec_path))
    print(f"applet coverage: lines {summary.lines.percent}% ({summary.lines.covered}/"
          f"{summary.lines.covered + summary.lines.missed}), branches {summary.branches.percent}% "
          f"({summary.branches.covered}/{summary.branches.covered + summary.branches.missed}); "
          f"report: {(project.coverage / 'html' / 'index.html').relative_to(ROOT)}")
    if failed:
        raise Exit("Error: some tests failed (the coverage report covers the run as it was)", code=failed)


@task(pre=[build], help={"slots": "how many simulated cards (vpcd slots 0 and 1)", "trace": "log APDUs",
                         "card_manager": "scp02 or scp03: a GlobalPlatform card manager on the card",
                         "empty": "no applets installed at start"})
def sim(c, slots=1, trace=False, card_manager="", empty=False):
    """Start pcscd if needed and simulated cards behind vpcd; print their reader names; Ctrl-C stops."""
    args = ["sim", "--slots", str(slots)] + (["--trace"] if trace else [])
    args += (["--card-manager", card_manager] if card_manager else []) + (["--empty"] if empty else [])
    _sh([sys.executable, "-m", "cardsuite", *args], cwd=ROOT)


@task(pre=[build], help={"card": "vpcd:<slot> or reader:<name>; default: a fresh simulated card behind vpcd",
                         "profile": "card profile [default profiles/cards/sim-suite.toml]"})
def install(c, card="", profile="profiles/cards/sim-suite.toml"):
    """Load, install and personalise the suite through our GlobalPlatform client (`cardsuite deploy`)."""
    from cardsuite import settings
    from cardsuite.sim.bridge import CardManagerConfig
    from cardsuite.sim.vpcd import VpcdSimulator, ensure_pcscd, free_slots

    # the simulated wallet's PIN/PUK when none are set: a demo card, never a real one (--card)
    env = dict(os.environ) if card else {settings.ENV_PIN: "1234", settings.ENV_PUK: "12345678", **os.environ}
    deploy = [sys.executable, "-m", "cardsuite", "deploy", str(ROOT / profile)]
    if card:
        _sh([*deploy, "--card", card], cwd=ROOT, env=env)
        return
    _guard(ensure_pcscd)
    slots = free_slots()
    if not slots:
        raise Exit("Error: every vpcd slot holds a card; stop it or pass --card vpcd:<slot>", code=1)
    # the card lives as long as this task: it shows the deploy; `invoke sim --card-manager scp03 --empty`
    # keeps one running for `invoke install --card vpcd:0`
    with VpcdSimulator(_project(), slot=slots[0], applets=[], card_manager=CardManagerConfig("scp03")):
        _sh([*deploy, "--card", f"vpcd:{slots[0]}"], cwd=ROOT, env=env)


@task
def refresh_fixtures(c):
    """Copy freshly built CAP files over the test fixtures (tests/fixtures/caps), which CI loads since it
    has no Oracle SDK; tests/gp/test_gp_cap.py fails when a fixture differs from a fresh build."""
    build(c, require_cap=True)
    fixtures = ROOT / "tests" / "fixtures" / "caps"
    for fixture in sorted(fixtures.glob("*.cap")):
        fresh = ROOT / "build" / "cap" / fixture.name
        if fresh.read_bytes() != fixture.read_bytes():
            shutil.copyfile(fresh, fixture)
            print(f"updated {fixture.relative_to(ROOT)}")


@task(pre=[setup], help={"gp_jar": "also GlobalPlatformPro's gp.jar (refused while no release checksum is pinned)"})
def fetch_toolchain(c, gp_jar=False):
    """Download the pinned Oracle Java Card SDK and ant-javacard into the cache (online), SHA-256 checked."""
    from cardsuite.settings import ENV_GP_JAR
    from cardsuite.tooling.toolchain import fetch_gp_jar
    from cardsuite.tooling.toolchain import fetch_toolchain as fetch

    toolchain = _guard(fetch)
    print(f"kit: {toolchain.kit.path}\nant-javacard: {toolchain.ant_javacard}")
    if gp_jar:
        print(f"gp.jar: {_guard(fetch_gp_jar)} (point {ENV_GP_JAR} at it)")


@task
def lint(c):
    """ruff over the Python code."""
    _sh([sys.executable, "-m", "ruff", "check", "host", "tests", "tasks.py"], cwd=ROOT)
