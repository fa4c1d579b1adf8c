"""invoke tasks: thin wrappers over cardsuite's build, simulator, test and benchmark code.

    invoke setup       Debian packages, the Python package, pinned Java libraries (idempotent, fast)
    invoke build       simulator classes always; CAP/EXP files where the Oracle SDK is configured
    invoke demo        build, then exercise an applet on the simulator in-process and over vpcd
    invoke test        the suite on the in-process simulator, then the end-to-end subset over vpcd
    invoke bench       figures into build/bench/ (transport, wallet payments, e-cash, loading)
    invoke sizes       CAP and load sizes (needs the Oracle SDK) into build/reports/sizes.json
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
    missing = []
    for package in APT_PACKAGES:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
        if "install ok installed" not in status.stdout:
            missing.append(package)
    return missing


def _installed_from_here() -> bool:
    """Whether `import cardsuite` finds this checkout (another clone may have installed its own)."""
    probe = subprocess.run([sys.executable, "-c", "import cardsuite; print(cardsuite.__file__)"],
                           capture_output=True, text=True, cwd="/")
    return probe.returncode == 0 and Path(probe.stdout.strip()).resolve().is_relative_to(ROOT / "host")


@task
def setup(c):
    """Install everything cardsuite needs; a second run checks and changes nothing."""
    missing = _missing_debian_packages()
    if missing:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        _sh(sudo + ["apt-get", "update", "-qq"], env=env)
        _sh(sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)
    python = _digest(ROOT / "pyproject.toml")
    if not _stamped("python", python) or not _installed_from_here():
        _sh([sys.executable, "-m", "pip", "install", "-q", "-e", f"{ROOT}[sim,postgres,scms,test]"])
        _stamp("python", python)
    _command_on_path()
    pom = ROOT / "host" / "simbridge" / "pom.xml"
    maven = _digest(pom)
    if not _stamped("maven", maven) or not list((DEPS / "java").glob("jcardsim-*.jar")):
        shutil.rmtree(DEPS / "java", ignore_errors=True)
        _sh(["mvn", "-q", "-B", "-f", str(pom), f"-Dmaven.repo.local={DEPS / 'm2'}",
             f"{MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies", f"-DoutputDirectory={DEPS / 'java'}"])
        _stamp("maven", maven)
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


@task(pre=[build], help={"only": "transport, wallet, ecash or load; default: all four"})
def bench(c, only=""):
    """Figures into build/bench/: transport.json (round trips), wallet.json (payments), ecash.json,
    load.json (GlobalPlatform loads and the profile deploy)."""
    from cardsuite.bench.ecash import run_ecash_bench
    from cardsuite.bench.load import run_load_bench
    from cardsuite.bench.transport import run_transport_bench
    from cardsuite.bench.wallet import run_wallet_bench

    runs = {"transport": run_transport_bench, "wallet": run_wallet_bench, "ecash": run_ecash_bench,
            "load": run_load_bench}
    if only and only not in runs:
        raise Exit(f"Error: --only takes one of {', '.join(runs)}", code=1)
    for name, run_bench in runs.items():
        if not only or only == name:
            _guard(lambda run_bench=run_bench: run_bench(_project()))


@task(pre=[build])
def sizes(c):
    """CAP and load sizes of every package next to the paper's Table 4, in build/reports/sizes.json."""
    from cardsuite.tooling.sizes import run_sizes

    _guard(lambda: run_sizes(_project()))


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


@task(pre=[setup])
def fetch_toolchain(c):
    """Download the pinned Oracle Java Card SDK and ant-javacard into the cache (online), SHA-256 checked."""
    from cardsuite.tooling.toolchain import fetch_toolchain as fetch

    toolchain = _guard(fetch)
    print(f"kit: {toolchain.kit.path}\nant-javacard: {toolchain.ant_javacard}")


@task
def lint(c):
    """ruff over the Python code."""
    _sh([sys.executable, "-m", "ruff", "check", "host", "tests", "tasks.py"], cwd=ROOT)
