"""CAP files: the components the Java Card converter writes, and the load file GlobalPlatform LOADs.

A CAP file is a zip holding one file per component (`<package path>/javacard/<Name>.cap`), each
`tag (1) | size (2) | info[size]` (Java Card VM specification 3.0.5, chapter 6). We read the package AID
and version from the Header, the applets from the Applet component and the imported packages from the
Import component, and build the Load File Data Block: the components concatenated in the order the
JCVM specification (section 6.2, "installation order") and GlobalPlatform Card Specification 2.3.1
(section 11.6.2.3, Load File Data Block) prescribe, wrapped in tag C4 for the first LOAD block.
"""

from __future__ import annotations

import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from cardsuite.errors import CardsuiteError
from cardsuite.tlv import encode_tlv

COMPONENTS = {1: "Header", 2: "Directory", 3: "Applet", 4: "Import", 5: "ConstantPool", 6: "Class",
              7: "Method", 8: "StaticField", 9: "RefLocation", 10: "Export", 11: "Descriptor", 12: "Debug",
              13: "StaticResources"}
# JCVM 3.0.5 section 6.2 (3.1 adds Static Resources before the Descriptor). Debug never goes to a card.
LOAD_ORDER = ("Header", "Directory", "Import", "Applet", "Class", "Method", "StaticField", "Export",
              "ConstantPool", "RefLocation", "StaticResources")
NOT_LOADED = ("Descriptor", "Debug")  # kept off the card by GlobalPlatform LOAD (the Descriptor is optional)
REQUIRED = ("Header", "Directory", "Import", "ConstantPool", "Method")
HEADER_MAGIC = 0xDECAFFED
TAG_LOAD_FILE_DATA_BLOCK = 0xC4  # GP CS 2.3.1 section 11.6.2.3


class CapError(CardsuiteError):
    """A CAP file that is not what the Java Card specification describes."""


@dataclass(frozen=True)
class PackageRef:
    """A package as the Header and Import components name it: AID and major.minor version."""

    aid: bytes
    major: int
    minor: int

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class CapApplet:
    aid: bytes
    install_method_offset: int


@dataclass(frozen=True)
class Cap:
    """A CAP file read completely: every component's bytes (tag, size and info) by name."""

    path: Path
    file_size: int
    components: dict[str, bytes] = field(default_factory=dict)
    cap_version: tuple[int, int] = (0, 0)  # CAP file format major.minor (2.1, 2.2, 2.3)
    package: PackageRef = PackageRef(b"", 0, 0)
    applets: tuple[CapApplet, ...] = ()
    imports: tuple[PackageRef, ...] = ()

    @property
    def package_aid(self) -> bytes:
        return self.package.aid

    @property
    def applet_aids(self) -> list[bytes]:
        return [a.aid for a in self.applets]

    def load_file_data_block(self, include_descriptor: bool = False) -> bytes:
        """The components a card loads, in the installation order; the Descriptor only when asked
        (a few cards need it, most refuse or ignore it)."""
        names = [n for n in LOAD_ORDER if n in self.components]
        if include_descriptor and "Descriptor" in self.components:
            names.append("Descriptor")
        return b"".join(self.components[n] for n in names)

    def load_file(self, include_descriptor: bool = False) -> bytes:
        """What LOAD sends, split into blocks by the caller: `C4 <BER length> <Load File Data Block>`."""
        return encode_tlv(TAG_LOAD_FILE_DATA_BLOCK, self.load_file_data_block(include_descriptor))

    @property
    def load_size(self) -> int:
        return sum(len(data) for name, data in self.components.items() if name not in NOT_LOADED)


def _component_name(filename: str) -> str | None:
    parts = filename.split("/")
    if len(parts) < 2 or parts[-2] != "javacard" or not parts[-1].endswith(".cap"):
        return None
    return parts[-1][: -len(".cap")]


def read_components(path: Path) -> dict[str, bytes]:
    """Every component of a CAP file, each checked against its tag and size field."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise CapError(f"{path} is not a CAP file (a zip archive): {exc}") from None
    components: dict[str, bytes] = {}
    with archive:
        for entry in archive.infolist():
            name = _component_name(entry.filename)
            if name is None:
                continue
            data = archive.read(entry)
            if len(data) < 3:
                raise CapError(f"{path}: component {name} has {len(data)} bytes, fewer than its header")
            tag, size = data[0], int.from_bytes(data[1:3], "big")
            if COMPONENTS.get(tag) != name:
                raise CapError(f"{path}: component {name} carries tag {tag}, expected that of {name}")
            if size != len(data) - 3:
                raise CapError(f"{path}: component {name} says {size} bytes of info, has {len(data) - 3}")
            components[name] = data
    for required in REQUIRED:
        if required not in components:
            raise CapError(f"{path}: no {required} component")
    return components


class _Reader:
    """Bounds-checked reading of a component's info bytes."""

    def __init__(self, path: Path, name: str, info: bytes) -> None:
        self.path, self.name, self.info, self.pos = path, name, info, 0

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.info):
            raise CapError(f"{self.path}: component {self.name} ends early (needs {count} bytes at {self.pos})")
        out = self.info[self.pos : self.pos + count]
        self.pos += count
        return out

    def u1(self) -> int:
        return self.take(1)[0]

    def u2(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def package(self) -> PackageRef:
        """package_info: minor_version, major_version, AID_length, AID (JCVM 6.4 and 6.6)."""
        minor, major = self.u1(), self.u1()
        length = self.u1()
        if not 5 <= length <= 16:
            raise CapError(f"{self.path}: component {self.name} names an AID of {length} bytes (5..16 allowed)")
        return PackageRef(self.take(length), major, minor)


def _parse_header(path: Path, data: bytes) -> tuple[tuple[int, int], PackageRef]:
    """Header component (JCVM 3.0.5 section 6.4): magic, minor/major CAP version, flags, package_info."""
    reader = _Reader(path, "Header", data[3:])
    magic = int.from_bytes(reader.take(4), "big")
    if magic != HEADER_MAGIC:
        raise CapError(f"{path}: Header magic is {magic:08X}, not DECAFFED")
    minor, major = reader.u1(), reader.u1()
    reader.u1()  # flags: int, export, applet
    if major != 2 or minor not in (1, 2, 3):
        # 2.1/2.2 (Java Card 2.x/3.0) and 2.3's compact format (3.1) share this layout
        raise CapError(f"{path}: CAP format {major}.{minor} is not supported")
    return (major, minor), reader.package()


def _parse_applets(path: Path, data: bytes) -> tuple[CapApplet, ...]:
    """Applet component (JCVM 6.5): count, then AID_length, AID, install_method_offset each."""
    reader = _Reader(path, "Applet", data[3:])
    applets = []
    for _ in range(reader.u1()):
        length = reader.u1()
        if not 5 <= length <= 16:
            raise CapError(f"{path}: an applet AID of {length} bytes (5..16 allowed)")
        applets.append(CapApplet(reader.take(length), reader.u2()))
    return tuple(applets)


def _parse_imports(path: Path, data: bytes) -> tuple[PackageRef, ...]:
    """Import component (JCVM 6.6): count, then package_info each."""
    reader = _Reader(path, "Import", data[3:])
    return tuple(reader.package() for _ in range(reader.u1()))


def read_cap(path: Path | str) -> Cap:
    """Reads a CAP file: components, package, applets and imports."""
    path = Path(path)
    components = read_components(path)
    version, package = _parse_header(path, components["Header"])
    applets = _parse_applets(path, components["Applet"]) if "Applet" in components else ()
    imports = _parse_imports(path, components["Import"])
    return Cap(path, path.stat().st_size, components, version, package, applets, imports)


class CapCache:
    """CAP files read once and kept while the file is unchanged (its size, modification time and inode): a
    long-running process, the SCMS server, would otherwise read and parse the same CAPs for every request
    (~1.4 ms of one lone post-issuance's CPU, 2026-12-04). A CAP rebuilt in place is read again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the ADS's worker threads share one cache
        self._kept: dict[Path, tuple[tuple[int, int, int], Cap]] = {}

    def read(self, path: Path | str) -> Cap:
        path = Path(path)
        try:
            stat = path.stat()
        except OSError:
            return read_cap(path)  # read_cap's own error for a file that is not there
        seen = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
        with self._lock:
            kept = self._kept.get(path)
        if kept is not None and kept[0] == seen:
            return kept[1]
        cap = read_cap(path)  # a file replaced after the stat: kept under the old key, read again next time
        with self._lock:
            self._kept[path] = (seen, cap)
        return cap
