"""The outside tools a build needs, found or fetched, and checked before use.

- JDK: `javac`/`java` on PATH (Debian's OpenJDK 17).
- Oracle Java Card SDK ("kit") and ant-javacard: on no registry, so never in the repository. They come
  from a configured local path (CARDSUITE_JC_HOME / CARDSUITE_ANT_JAVACARD, or `cardsuite.local.toml`),
  or from `invoke fetch-toolchain`, which downloads the pinned upstream releases into a cache outside
  the repository and verifies every file by SHA-256.
- Java libraries (jCardSim, ...): pinned in host/simbridge/pom.xml, resolved by Maven into deps/.
- GlobalPlatformPro (gp.jar), for the tests that run the real client: a user-supplied CARDSUITE_GP_JAR, or
  `invoke fetch-toolchain --gp-jar` once its release checksum is pinned (GP_JAR below).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cardsuite.errors import ToolchainError
from cardsuite.project import Project
from cardsuite.settings import ENV_ANT_JAVACARD, ENV_CACHE, ENV_GP_JAR, ENV_JC_HOME

if TYPE_CHECKING:
    import subprocess

PINS = Path(__file__).resolve().parent / "pins"


@dataclass(frozen=True)
class PinnedDownload:
    name: str
    version: str
    url: str
    sha256: str | None  # None: the archive itself varies (its files are checked against a list), or unknown
    checksum_source: str = ""  # where the SHA-256 was taken from, and whether it could be checked


# The upstream release users download by hand; its SHA-256 is the one published for that release.
ANT_JAVACARD = PinnedDownload(
    "ant-javacard",
    "v26.05.15",
    "https://github.com/martinpaljak/ant-javacard/releases/download/v26.05.15/ant-javacard.jar",
    "14f5e25c07b184e4ec02ee148892c2ea7ad5d7e9db8b91109524df8f7d000589",
    "unchecked: the newest release in the public source snapshot available when this was re-checked is v25.12.01;"
    " no v26.05.15 release or its checksum could be seen (issue 12)",
)
# GlobalPlatformPro's release gp.jar, which field loaders download. No SHA-256 is pinned: none could be checked
# where this was pinned (no network; the shared tools' gp.jar is a build from the v26.02.11 sources, SHA-256
# db321b69655842a4071812f8b9b739d9eec721146d4f620a55432f8e6f96df4b, not the release file). Until someone checks
# the release file and pins its SHA-256 here, fetch_gp_jar refuses rather than run an unverified jar.
GP_JAR = PinnedDownload(
    "GlobalPlatformPro",
    "v26.02.11",
    "https://github.com/martinpaljak/GlobalPlatformPro/releases/download/v26.02.11/gp.jar",
    None,
    "not pinned: no checksum of the release file could be verified",
)
# Oracle's kits as republished for build tools; a generated tarball is not byte-stable, so every file of
# the kit we keep is verified against pins/<kit>.sha256 instead.
SDK_KIT_NAME = "jc320v25.1_kit"
SDK_ARCHIVE = PinnedDownload(
    "oracle_javacard_sdks",
    "3751d774dd4e6b60e813c6be61ab017e77f36570",
    "https://codeload.github.com/martinpaljak/oracle_javacard_sdks/tar.gz/3751d774dd4e6b60e813c6be61ab017e77f36570",
    None,
)

# Which JDKs each kit's converter runs on (ant-javacard's and Oracle's release notes).
_KIT_JDKS = {"3.2": range(11, 22), "3.1": range(8, 12), "3.0": range(8, 9), "2.2": range(8, 9)}


def cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cardsuite"


def run(cmd: list[str], cwd: Path | None = None, what: str | None = None) -> subprocess.CompletedProcess:
    """Runs a tool (argument list, no shell) and raises ToolchainError with its output when it fails."""
    import subprocess  # here, not at the top: a build with nothing to do runs no tool and need not load it

    try:
        result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise ToolchainError(f"{cmd[0]} not found on PATH; run `invoke setup`") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise ToolchainError(f"{what or cmd[0]} failed (exit {result.returncode}):\n{output}")
    return result


def java_major() -> int:
    """The major version of the `java` on PATH: from its JDK's `release` file (JAVA_VERSION, in every JDK since 9)
    without starting a JVM, which a build with stale CAPs would wait for before its first conversion; else from
    `java -version`."""
    found = shutil.which("java")
    if found:
        try:
            text = (Path(os.path.realpath(found)).parent.parent / "release").read_text()
        except OSError:
            text = ""
        if release := re.search(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', text, re.MULTILINE):
            major = int(release.group(1))
            return int(release.group(2)) if major == 1 else major
    result = run(["java", "-version"], what="java -version")
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        raise ToolchainError(f"cannot read the Java version from: {result.stderr.strip()}")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 else major


@dataclass(frozen=True)
class JavaCardKit:
    path: Path

    @property
    def family(self) -> str:
        """'3.2' for the 3.2 kits that target several versions, else the kit's own version."""
        if list((self.path / "lib").glob("api_classic-*.jar")):
            return "3.2" if (self.path / "lib" / "api_classic-3.2.0.jar").exists() else "3.1"
        name = self.path.name
        match = re.match(r"jc(\d)(\d)", name)
        return f"{match.group(1)}.{match.group(2)}" if match else "3.0"

    def targets(self) -> list[str]:
        jars = sorted((self.path / "lib").glob("api_classic-*.jar"))
        versions = [m.group(1) for j in jars if (m := re.fullmatch(r"api_classic-(\d\.\d\.\d)\.jar", j.name))]
        return versions

    def api_jar(self, target: str) -> Path:
        jar = self.path / "lib" / f"api_classic-{target}.jar"
        if jar.exists():
            return jar
        old = self.path / "lib" / "api_classic.jar"
        if old.exists():
            return old
        raise ToolchainError(f"the kit {self.path} has no API jar for Java Card {target}")

    def api_jars(self, target: str) -> list[Path]:
        """What code for ``target`` compiles against, as ant-javacard does: the API and its annotations."""
        annotations = self.path / "lib" / f"api_classic_annotations-{target}.jar"
        return [self.api_jar(target)] + ([annotations] if annotations.exists() else [])

    def check(self, target: str, jdk: int) -> None:
        if not (self.path / "lib" / "tools.jar").exists() and not (self.path / "lib" / "converter.jar").exists():
            raise ToolchainError(f"{self.path} is not a Java Card SDK kit (no lib/tools.jar or lib/converter.jar)")
        family = self.family
        jdks = _KIT_JDKS.get(family, range(8, 9))
        if jdk not in jdks:
            raise ToolchainError(
                f"JDK/SDK mismatch: the Java Card {family} kit at {self.path} runs on JDK "
                f"{jdks.start}..{jdks.stop - 1}, but `java` is JDK {jdk}. Use the 3.2 kit ({SDK_KIT_NAME}) with "
                f"JDK 17, or put a matching JDK first on PATH."
            )
        targets = self.targets()
        if targets and target not in targets:
            raise ToolchainError(
                f"the kit at {self.path} cannot target Java Card {target}; it targets {', '.join(targets)}"
            )


@dataclass(frozen=True)
class CapToolchain:
    kit: JavaCardKit
    ant_javacard: Path


def _local_config(project: Project) -> dict:
    path = project.root / "cardsuite.local.toml"
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")).get("toolchain", {})
    except UnicodeDecodeError as exc:  # TOML 1.0: a document is UTF-8 text
        raise ToolchainError(f"{path} is not a TOML text file (not UTF-8 at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ToolchainError(f"{path}: {exc}") from None


def locate_cap_toolchain(project: Project) -> tuple[CapToolchain | None, list[str]]:
    """Finds the kit and ant-javacard. Returns (toolchain, []) or (None, what is missing and how to fix it)."""
    config = _local_config(project)
    kit_setting = os.environ.get(ENV_JC_HOME) or config.get("jc_home")
    jar_setting = os.environ.get(ENV_ANT_JAVACARD) or config.get("ant_javacard")
    cached_kit = cache_dir() / "sdks" / SDK_KIT_NAME
    cached_jar = cache_dir() / f"ant-javacard-{ANT_JAVACARD.version}.jar"
    problems: list[str] = []

    kit_path = Path(kit_setting).expanduser() if kit_setting else cached_kit
    if not kit_path.is_dir():
        where = f"{kit_path} (from {ENV_JC_HOME} or cardsuite.local.toml) does not exist" if kit_setting else (
            "no Oracle Java Card SDK configured"
        )
        problems.append(
            f"{where}: set {ENV_JC_HOME} to a kit folder (e.g. .../{SDK_KIT_NAME}), or put "
            f"`jc_home = \"...\"` under [toolchain] in cardsuite.local.toml, or run `invoke fetch-toolchain` "
            f"(online) to download the pinned kit into {cached_kit}"
        )
    jar_path = Path(jar_setting).expanduser() if jar_setting else cached_jar
    if not jar_path.is_file():
        where = f"{jar_path} does not exist" if jar_setting else "no ant-javacard.jar configured"
        problems.append(
            f"{where}: set {ENV_ANT_JAVACARD} to the jar (release {ANT_JAVACARD.version}), or put "
            f"`ant_javacard = \"...\"` under [toolchain] in cardsuite.local.toml, or run `invoke fetch-toolchain`"
        )
    if problems:
        return None, problems
    return CapToolchain(JavaCardKit(kit_path), jar_path), []


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, what: str) -> bytes:
    import urllib.request  # here, not at the top: every build imports this module, few download

    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except OSError as exc:
        raise ToolchainError(
            f"cannot download {what} from {url} ({exc}). Offline? Supply a local copy instead: "
            f"{ENV_JC_HOME} / {ENV_ANT_JAVACARD}"
        ) from None


def kit_checksums() -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in (PINS / f"{SDK_KIT_NAME}.sha256").read_text().splitlines():
        if line and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            sums[name] = digest
    return sums


def fetch_ant_javacard(log=print) -> Path:
    """The pinned ant-javacard release in the cache, downloaded when missing, checked by SHA-256."""
    jar = cache_dir() / f"ant-javacard-{ANT_JAVACARD.version}.jar"
    if jar.exists() and sha256_of(jar) == ANT_JAVACARD.sha256:
        return jar
    log(f"downloading ant-javacard {ANT_JAVACARD.version} ...")
    body = _download(ANT_JAVACARD.url, "ant-javacard")
    actual = hashlib.sha256(body).hexdigest()
    if actual != ANT_JAVACARD.sha256:
        raise ToolchainError(f"ant-javacard download has SHA-256 {actual}, expected {ANT_JAVACARD.sha256}")
    jar.parent.mkdir(parents=True, exist_ok=True)
    jar.write_bytes(body)
    return jar


def fetch_kit(log=print) -> JavaCardKit:
    """The pinned SDK kit in the cache: extracted from the archive file by file, each file checked
    against pins/<kit>.sha256, and moved into place only when all of them are there and right."""
    sdks = cache_dir() / "sdks"
    kit = sdks / SDK_KIT_NAME
    sums = kit_checksums()
    if all((sdks / name).is_file() for name in sums):
        return JavaCardKit(kit)
    log(f"downloading the Oracle Java Card SDK ({SDK_KIT_NAME}) ...")
    import io
    import tarfile

    body = _download(SDK_ARCHIVE.url, "the Java Card SDK archive")
    staging = sdks / f".{SDK_KIT_NAME}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        for member in archive.getmembers():
            inner = member.name.split("/", 1)[1] if "/" in member.name else ""
            if member.isfile() and inner in sums:
                data = archive.extractfile(member).read()
                if hashlib.sha256(data).hexdigest() != sums[inner]:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise ToolchainError(f"{inner} in the SDK archive does not match its pinned SHA-256")
                target = staging / inner
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                target.chmod(0o755 if inner.endswith(".sh") else 0o644)
    missing = [n for n in sums if not (staging / n).exists()]
    if missing:
        shutil.rmtree(staging, ignore_errors=True)
        raise ToolchainError(f"the SDK archive lacks {len(missing)} pinned files, e.g. {missing[0]}")
    shutil.rmtree(kit, ignore_errors=True)
    (staging / SDK_KIT_NAME).rename(kit)
    shutil.rmtree(staging, ignore_errors=True)
    return JavaCardKit(kit)


def fetch_gp_jar(log=print) -> Path:
    """The pinned GlobalPlatformPro release in the cache, downloaded when missing, checked by SHA-256; refused
    while no checksum is pinned (GP_JAR)."""
    if GP_JAR.sha256 is None:
        raise ToolchainError(f"no SHA-256 is pinned for gp.jar {GP_JAR.version} ({GP_JAR.checksum_source}): "
                             f"download {GP_JAR.url} yourself, check it, and set {ENV_GP_JAR} to it")
    jar = cache_dir() / f"gp-{GP_JAR.version}.jar"
    if jar.exists() and sha256_of(jar) == GP_JAR.sha256:
        return jar
    log(f"downloading GlobalPlatformPro {GP_JAR.version} ...")
    body = _download(GP_JAR.url, "gp.jar")
    actual = hashlib.sha256(body).hexdigest()
    if actual != GP_JAR.sha256:
        raise ToolchainError(f"gp.jar download has SHA-256 {actual}, expected {GP_JAR.sha256}")
    jar.parent.mkdir(parents=True, exist_ok=True)
    jar.write_bytes(body)
    return jar


def fetch_toolchain(log=print) -> CapToolchain:
    """Downloads the pinned ant-javacard and SDK kit into the cache, verified by SHA-256."""
    return CapToolchain(fetch_kit(log), fetch_ant_javacard(log))


_SEVERE = re.compile(
    r"^\s*\[(?:convert|verify|javacard|compile|javac|cap|exp)\]\s*(?:SEVERE:\s*)?(.*\berror\b.*|.*\bfailed\b.*)$",
    re.IGNORECASE,
)
_DETAIL = re.compile(r"^\s*\[(?:convert|verify)\]\s*SEVERE:\s*(.+)$")


def converter_errors(output: str) -> list[str]:
    """The error lines of a converter/verifier run. The 3.2 kit's tools exit 0 even when they fail,
    so success is decided from this output, not from exit codes."""
    errors: list[str] = []
    pending_line = ""
    for line in output.splitlines():
        detail = _DETAIL.match(line)
        if detail:
            text = detail.group(1).strip()
            located = re.fullmatch(r"error: (line \d+):?", text)
            if located:  # the converter puts the location and the message on two records
                pending_line = located.group(1) + ": "
            elif text:
                errors.append(pending_line + text)
                pending_line = ""
        elif _SEVERE.match(line) and "passed" not in line.lower():
            errors.append(line.strip())
        elif re.search(r"completed with [1-9]\d* errors?", line) or "CAP file not generated" in line:
            errors.append(line.strip())
    return errors


def explain_converter_errors(package: str, errors: list[str]) -> str:
    hints = []
    text = "\n".join(errors)
    if re.search(r"export file .* (not found|missing)|\.exp\b.*not found|cannot find export", text, re.I):
        hints.append("a missing export file: build the imported library first, or add it to the package's "
                     "`imports` in applets/manifest.toml")
    if re.search(r"unsupported class file|major version|class file version", text, re.I):
        hints.append("the converter cannot read these class files: compile with -source 8 -target 8 against "
                     "the kit's api_classic jar")
    if re.search(r"unsupported type (int|long)|type int", text, re.I):
        hints.append("Java Card has no long, and int only on cards that support it: use short arithmetic")
    hint = ("\nLikely cause: " + "; ".join(hints)) if hints else ""
    return f"converting package {package!r} failed:\n  " + "\n  ".join(errors) + hint
