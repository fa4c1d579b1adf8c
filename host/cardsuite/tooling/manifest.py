"""The suite's package manifest (applets/manifest.toml): parsed, validated and ordered for building."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from cardsuite.codec import parse_aid, parse_hex
from cardsuite.errors import ConfigurationError

SUPPORTED_TARGETS = ("3.0.4", "3.0.5", "3.1.0", "3.2.0")
_JAVA_PACKAGE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")
_JAVA_CLASS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

K = TypeVar("K", bound=Hashable)


class ImportCycleError(ConfigurationError):
    """Packages that import each other in a circle; ``chain`` runs from a package back to itself."""

    def __init__(self, chain: list) -> None:
        super().__init__(f"import cycle {' -> '.join(map(str, chain))}")
        self.chain = chain


def import_order(packages: Iterable[K], imports: Callable[[K], Iterable[K]]) -> list[K]:
    """``packages`` with each one after every package it imports, otherwise in the given order (depth first,
    so a package's imports come right before it); ImportCycleError on a cycle. The one ordering for the build
    (the converter needs an import's export file) and for loading onto a card ([GPCS] 9.3.5: a load file's
    imports must be on the card)."""
    order: list[K] = []
    done: set[K] = set()
    chain: list[K] = []

    def visit(package: K) -> None:
        if package in done:
            return
        if package in chain:
            raise ImportCycleError([*chain[chain.index(package):], package])
        chain.append(package)
        for imported in imports(package):
            visit(imported)
        chain.pop()
        done.add(package)
        order.append(package)

    for package in packages:
        visit(package)
    return order


@dataclass(frozen=True)
class AppletSpec:
    class_name: str
    aid: bytes
    params: bytes = b""


@dataclass(frozen=True)
class PackageSpec:
    name: str
    java: str
    aid: bytes
    version: str
    library: bool = False
    imports: tuple[str, ...] = ()
    simulator: bool = True
    applets: tuple[AppletSpec, ...] = ()

    @property
    def rid(self) -> bytes:
        return self.aid[:5]

    def source_dir(self, applets_dir: Path) -> Path:
        return applets_dir / self.name

    def qualified(self, applet: AppletSpec) -> str:
        return f"{self.java}.{applet.class_name}"


@dataclass(frozen=True)
class Manifest:
    targetsdk: str
    packages: tuple[PackageSpec, ...] = field(default_factory=tuple)

    def package(self, name: str) -> PackageSpec:
        for package in self.packages:
            if package.name == name:
                return package
        raise ConfigurationError(f"no package named {name!r} in the manifest")

    def applet_aid(self, package: str, index: int = 0) -> bytes:
        """The AID of a package's applet, so that code and tests read AIDs from here rather than repeat them."""
        applets = self.package(package).applets
        if not 0 <= index < len(applets):
            raise ConfigurationError(f"package {package!r} has no applet number {index}")
        return applets[index].aid

    def build_order(self) -> list[PackageSpec]:
        """Packages after every package they import (checked acyclic at load)."""
        names = import_order([p.name for p in self.packages], lambda name: self.package(name).imports)
        return [self.package(name) for name in names]

    def simulated_applets(self) -> list[tuple[PackageSpec, AppletSpec]]:
        return [(p, a) for p in self.build_order() if p.simulator for a in p.applets]


def _package(entry: dict, index: int) -> PackageSpec:
    where = f"package #{index + 1}"
    for key in ("name", "java", "aid", "version"):
        if key not in entry:
            raise ConfigurationError(f"{where}: missing {key!r}")
    name = entry["name"]
    where = f"package {name!r}"
    known = {"name", "java", "aid", "version", "library", "imports", "simulator", "applet"}
    unknown = set(entry) - known
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)} (known: {sorted(known)})")
    if not _JAVA_PACKAGE.match(entry["java"]):
        raise ConfigurationError(f"{where}: {entry['java']!r} is not a Java package name")
    if not re.fullmatch(r"\d{1,3}\.\d{1,3}", str(entry["version"])):
        raise ConfigurationError(f"{where}: version must be 'major.minor', got {entry['version']!r}")
    aid = parse_aid(entry["aid"], f"{where} aid")
    applets = []
    for raw in entry.get("applet", []):
        cls = raw.get("class", "")
        if not _JAVA_CLASS.match(cls):
            raise ConfigurationError(f"{where}: applet class {cls!r} is not a Java class name")
        applet_aid = parse_aid(raw.get("aid", ""), f"{where} applet {cls}")
        if applet_aid[:5] != aid[:5]:
            raise ConfigurationError(
                f"{where}: applet {cls} AID {applet_aid.hex().upper()} does not start with the package RID "
                f"{aid[:5].hex().upper()} (the converter and the card require it)"
            )
        params = parse_hex(raw.get("params", ""), f"{where}: applet {cls} params", secret=True)
        applets.append(AppletSpec(cls, applet_aid, params))
    library = bool(entry.get("library", False))
    if library and applets:
        raise ConfigurationError(f"{where}: a library package has no applets")
    if not library and not applets:
        raise ConfigurationError(f"{where}: has no applets; set library = true for a library package")
    return PackageSpec(
        name=name,
        java=entry["java"],
        aid=aid,
        version=str(entry["version"]),
        library=library,
        imports=tuple(entry.get("imports", ())),
        simulator=bool(entry.get("simulator", True)),
        applets=tuple(applets),
    )


def load_manifest(path: Path) -> Manifest:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"manifest {path} not found") from None
    except UnicodeDecodeError as exc:  # TOML 1.0: a document is UTF-8 text
        raise ConfigurationError(f"manifest {path} is not a TOML text file (not UTF-8 at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
    targetsdk = str(data.get("build", {}).get("targetsdk", "3.0.5"))
    if targetsdk not in SUPPORTED_TARGETS:
        raise ConfigurationError(f"{path}: targetsdk {targetsdk!r} is not one of {', '.join(SUPPORTED_TARGETS)}")
    packages = tuple(_package(entry, i) for i, entry in enumerate(data.get("package", [])))
    _check_unique(path, packages)
    manifest = Manifest(targetsdk, packages)
    _check_imports(path, manifest)
    return manifest


def _check_unique(path: Path, packages: tuple[PackageSpec, ...]) -> None:
    seen: dict[object, str] = {}
    for package in packages:
        keys = [("name", package.name), ("java", package.java), ("aid", package.aid)]
        keys += [("aid", a.aid) for a in package.applets]
        for key in keys:
            if key in seen:
                value = key[1].hex().upper() if isinstance(key[1], bytes) else key[1]
                raise ConfigurationError(f"{path}: {key[0]} {value} used by {seen[key]!r} and {package.name!r}")
            seen[key] = package.name


def _check_imports(path: Path, manifest: Manifest) -> None:
    names = {p.name: p for p in manifest.packages}
    for package in manifest.packages:
        for dep in package.imports:
            if dep not in names:
                raise ConfigurationError(f"{path}: package {package.name!r} imports unknown package {dep!r}")
            if not names[dep].library:
                raise ConfigurationError(f"{path}: package {package.name!r} imports {dep!r}, which is not a library")
    try:
        import_order(names, lambda name: names[name].imports)
    except ImportCycleError as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
