"""Where things are: the project's folders, found from CARDSUITE_ROOT, the working directory or this
package's own location (an editable install from the repository)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cardsuite.errors import ConfigurationError
from cardsuite.settings import ENV_ROOT

MANIFEST = Path("applets") / "manifest.toml"


def _looks_like_root(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def find_root() -> Path:
    env = os.environ.get(ENV_ROOT)
    if env:
        root = Path(env).resolve()
        if not _looks_like_root(root):
            raise ConfigurationError(f"{ENV_ROOT}={env} has no {MANIFEST}")
        return root
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for candidate in (start, *start.parents):
            if _looks_like_root(candidate):
                return candidate
    raise ConfigurationError(
        f"cannot find the cardsuite project (a folder with {MANIFEST}); run from inside it or set {ENV_ROOT}"
    )


@dataclass(frozen=True)
class Project:
    root: Path

    @classmethod
    def locate(cls) -> Project:
        return cls(find_root())

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def applets(self) -> Path:
        return self.root / "applets"

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def java_deps(self) -> Path:
        """Jars resolved by Maven from host/simbridge/pom.xml (pinned)."""
        return self.root / "deps" / "java"

    @property
    def jacoco_jars(self) -> Path:
        """JaCoCo's agent and command line, resolved by Maven apart from the simulator's classpath."""
        return self.root / "deps" / "jacoco"

    def jacoco_jar(self, kind: str) -> Path:
        """``kind`` "agent" (org.jacoco.agent, runtime) or "cli" (org.jacoco.cli, nodeps)."""
        artifact = {"agent": "org.jacoco.agent-*-runtime.jar", "cli": "org.jacoco.cli-*-nodeps.jar"}[kind]
        jars = sorted(self.jacoco_jars.glob(artifact))
        if not jars:
            raise ConfigurationError(f"JaCoCo's {kind} jar is not in {self.jacoco_jars}; run `invoke setup`")
        return jars[-1]

    @property
    def coverage(self) -> Path:
        return self.build / "coverage"

    @property
    def maven_repo(self) -> Path:
        return self.root / "deps" / "m2"

    @property
    def deps_pom(self) -> Path:
        return self.root / "host" / "simbridge" / "pom.xml"

    @property
    def bridge_sources(self) -> Path:
        return self.root / "host" / "simbridge" / "src"

    @property
    def bridge_classes(self) -> Path:
        return self.build / "simbridge" / "classes"

    @property
    def bridge_test_applets(self) -> Path:
        """The bridge's own test applets (transactions, tearing): built with it, run by tests/sim."""
        return self.root / "host" / "simbridge" / "test-applets"

    @property
    def bridge_test_classes(self) -> Path:
        return self.build / "simbridge" / "test-applets"

    @property
    def sim_classes(self) -> Path:
        """Applet classes compiled against jCardSim's API, which the simulator runs."""
        return self.build / "sim" / "classes"

    @property
    def cap_dir(self) -> Path:
        return self.build / "cap"

    @property
    def exp_dir(self) -> Path:
        return self.build / "exp"

    @property
    def reports(self) -> Path:
        return self.build / "reports"

    @property
    def bench(self) -> Path:
        return self.build / "bench"

    def jcardsim_jar(self) -> Path:
        jars = sorted(self.java_deps.glob("jcardsim-*.jar"))
        if not jars:
            raise ConfigurationError(f"jCardSim is not in {self.java_deps}; run `invoke setup`")
        return jars[-1]

    def java_classpath(self) -> list[str]:
        return [str(p) for p in sorted(self.java_deps.glob("*.jar"))]
