"""The CAP file reader (cardsuite.tooling.cap): package, applets and imports from the components, and the Load File
Data Block in GlobalPlatform's load order, on the echo CAP fixture (tests/fixtures/caps, our own build
output), on the suite's fresh CAP files when `invoke build` made them with the Oracle SDK, and on
malformed archives."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from cardsuite.project import Project
from cardsuite.tlv import parse_tlv
from cardsuite.tooling.cap import LOAD_ORDER, CapCache, CapError, read_cap, read_components
from cardsuite.tooling.manifest import load_manifest
from support import ECHO_AID, ECHO_PACKAGE_AID

FIXTURES = Path(__file__).parents[1] / "fixtures" / "caps"
ECHO = FIXTURES / "echo.cap"
h = bytes.fromhex


def _built_caps() -> list[Path]:
    project = Project.locate()
    caps = sorted(project.cap_dir.glob("*.cap")) if project.cap_dir.is_dir() else []
    if not caps:
        pytest.skip("no CAP files in build/cap: run `invoke build` with the Oracle SDK "
                    "(CARDSUITE_JC_HOME, CARDSUITE_ANT_JAVACARD)")
    return caps


def test_echo_fixture_contents() -> None:
    cap = read_cap(ECHO)
    assert cap.cap_version == (2, 1)
    assert cap.package_aid == ECHO_PACKAGE_AID and cap.package.version == "1.0"  # the manifest's echo package
    assert cap.applet_aids == [ECHO_AID]
    imported = {p.aid.hex().upper(): p.version for p in cap.imports}
    assert imported["A0000000620101"].startswith("1.")  # javacard.framework
    assert "A0000000620001" in imported  # java.lang


def test_load_file_data_block_follows_the_load_order() -> None:
    cap = read_cap(ECHO)
    block = cap.load_file_data_block()
    pos, seen = 0, []
    while pos < len(block):  # walk the components: tag, size, info
        size = int.from_bytes(block[pos + 1 : pos + 3], "big")
        seen.append(block[pos])
        assert block[pos : pos + 3 + size] == next(c for c in cap.components.values() if c[0] == block[pos])
        pos += 3 + size
    names = {1: "Header", 2: "Directory", 3: "Applet", 4: "Import", 5: "ConstantPool", 6: "Class", 7: "Method",
             8: "StaticField", 9: "RefLocation", 10: "Export", 13: "StaticResources"}
    order = [names[tag] for tag in seen]
    assert order == [n for n in LOAD_ORDER if n in cap.components]
    assert order[:4] == ["Header", "Directory", "Import", "Applet"]
    assert 11 not in seen and 12 not in seen  # no Descriptor, no Debug
    assert len(block) == cap.load_size


def test_load_file_is_wrapped_in_c4() -> None:
    cap = read_cap(ECHO)
    load_file = cap.load_file()
    assert load_file[0] == 0xC4
    assert load_file[1] == 0x82  # more than 255 bytes: two length bytes
    [(tag, value)] = parse_tlv(load_file)
    assert tag == 0xC4 and value == cap.load_file_data_block()
    with_descriptor = cap.load_file_data_block(include_descriptor=True)
    assert with_descriptor.endswith(cap.components["Descriptor"])


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.cap")), ids=lambda p: p.name)
def test_fixture_matches_a_fresh_build(fixture: Path) -> None:
    """Every fixture (the deploy tests load them when there is no SDK) cannot go stale unnoticed: with a
    build at hand, every component must be the same."""
    built = Project.locate().cap_dir / fixture.name
    if not built.exists():
        pytest.skip(f"no build/cap/{fixture.name} to compare with: run `invoke build` with the Oracle SDK")
    fresh, kept = read_components(built), read_components(fixture)
    changed = sorted(n for n in fresh.keys() | kept.keys() if fresh.get(n) != kept.get(n))
    assert not changed, (f"tests/fixtures/caps/{fixture.name} is stale (components {changed}): "
                         f"copy build/cap/{fixture.name}")


def test_the_fixtures_cover_the_suite_profile() -> None:
    """CI deploys profiles/cards/sim-suite.toml from the fixtures: each package it needs has one."""
    names = {p.stem for p in FIXTURES.glob("*.cap")}
    assert {"echo", "isofs", "isocmd", "isoapplet", "wallet", "paper_transparent", "paper_record",
            "paper_cyclic"} <= names


def test_every_built_cap_matches_the_manifest() -> None:
    project = Project.locate()
    manifest = load_manifest(project.manifest)
    for path in _built_caps():
        cap = read_cap(path)
        package = manifest.package(path.stem)
        assert cap.package_aid == package.aid, path.name
        assert cap.applet_aids == [a.aid for a in package.applets], path.name
        suite = {p.aid for p in manifest.packages}
        imported = {p.aid for p in cap.imports if p.aid in suite}
        assert imported == {manifest.package(name).aid for name in package.imports}, path.name


def test_the_cache_reads_a_cap_once_and_again_when_it_is_rebuilt(tmp_path: Path) -> None:
    """The SCMS server's CapCache: the same Cap while the file is unchanged, the new one once it is replaced
    (another package in its place), and read_cap's own error once it is gone."""
    path = tmp_path / "app.cap"
    path.write_bytes(ECHO.read_bytes())
    cache = CapCache()
    first = cache.read(path)
    assert first.package_aid == ECHO_PACKAGE_AID
    assert cache.read(path) is first
    path.write_bytes((FIXTURES / "isofs.cap").read_bytes())
    rebuilt = cache.read(path)
    assert rebuilt.package_aid == read_cap(FIXTURES / "isofs.cap").package_aid != ECHO_PACKAGE_AID
    assert cache.read(path) is rebuilt
    path.unlink()
    with pytest.raises(CapError):
        cache.read(path)


# ---------------------------------------------------------------- malformed


def _rewrite(tmp_path: Path, name: str, data: bytes) -> Path:
    target = tmp_path / "bad.cap"
    with zipfile.ZipFile(ECHO) as src, zipfile.ZipFile(target, "w") as dst:
        for entry in src.infolist():
            dst.writestr(entry, data if entry.filename.endswith(f"/{name}.cap") else src.read(entry))
    return target


def _header(magic: str = "DECAFFED", version: str = "0102", aid_len: int = 6) -> bytes:
    info = h(magic) + h(version) + b"\x04" + b"\x00\x01" + bytes([aid_len]) + h("F06361726401")
    return b"\x01" + len(info).to_bytes(2, "big") + info


@pytest.mark.parametrize(("name", "data", "message"), [
    ("Header", _header(magic="CAFEBABE"), "magic is CAFEBABE"),
    ("Header", _header(version="0203"), "CAP format 3.2 is not supported"),
    ("Header", _header(aid_len=3), "AID of 3 bytes"),
    ("Header", _header(aid_len=9), "ends early"),
    ("Applet", b"\x03\x00\x04\x01\x02\xf0\x63", "applet AID of 2 bytes"),
])
def test_malformed_components(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    with pytest.raises(CapError, match=message):
        read_cap(_rewrite(tmp_path, name, data))


def test_not_a_cap(tmp_path: Path) -> None:
    (tmp_path / "x.cap").write_text("hello")
    with pytest.raises(CapError, match="not a CAP file"):
        read_cap(tmp_path / "x.cap")
