"""The CAP component parser of cardsuite.tooling.sizes, on a CAP converted here (needs the Oracle SDK), on
hand-made archives (always), and the Table 4 report from the suite's own CAP files."""

from __future__ import annotations

import shutil
import textwrap
import zipfile
from pathlib import Path

import pytest
from cardsuite.errors import ToolchainError
from cardsuite.project import Project
from cardsuite.tooling.build import BuildResult, build_caps
from cardsuite.tooling.manifest import load_manifest
from cardsuite.tooling.sizes import CapError, break_even, parse_cap, run_sizes, size_report
from cardsuite.tooling.toolchain import locate_cap_toolchain

MANIFEST = """
    [[package]]
    name = "tiny"
    java = "demo.tiny"
    aid = "A00000000301"
    version = "1.0"
    applet = [{ class = "App", aid = "A0000000030101" }]
"""
APPLET = """
    package demo.tiny;
    import javacard.framework.*;
    public class App extends Applet {
        public static void install(byte[] b, short o, byte l) { new App().register(); }
        public void process(APDU apdu) { if (selectingApplet()) return; apdu.getBuffer()[0] = 1; }
    }
"""


@pytest.fixture(scope="module")
def toolchain():
    found, _ = locate_cap_toolchain(Project.locate())
    if found is None:
        pytest.skip("needs the Oracle Java Card SDK and ant-javacard (CARDSUITE_JC_HOME, CARDSUITE_ANT_JAVACARD) "
                    "to convert a CAP file")
    return found


def test_components_of_a_cap_converted_here(toolchain, tmp_path: Path) -> None:
    real = Project.locate()
    (tmp_path / "applets" / "tiny").mkdir(parents=True)
    (tmp_path / "applets" / "manifest.toml").write_text(textwrap.dedent(MANIFEST))
    (tmp_path / "applets" / "tiny" / "App.java").write_text(textwrap.dedent(APPLET))
    shutil.copytree(real.root / "ant", tmp_path / "ant")
    project = Project(tmp_path)
    build_caps(project, load_manifest(project.manifest), toolchain, BuildResult(), log=lambda _: None)
    cap = parse_cap(project.cap_dir / "tiny.cap")
    names = set(cap.components)
    assert {"Header", "Directory", "Import", "Applet", "Class", "Method", "ConstantPool", "RefLocation",
            "Descriptor"} <= names
    with zipfile.ZipFile(cap.path) as archive:
        stored = {Path(i.filename).stem: i.file_size for i in archive.infolist() if i.filename.endswith(".cap")}
    assert {name: c.size for name, c in cap.components.items()} == stored
    assert cap.load_size == sum(size for name, size in stored.items() if name not in ("Descriptor", "Debug"))
    assert 0 < cap.method_size < cap.load_size < cap.file_size


def _fake_cap(path: Path, components: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        for name, data in components.items():
            archive.writestr(f"demo/x/javacard/{name}.cap", data)
    return path


def _component(tag: int, info: bytes) -> bytes:
    return bytes([tag]) + len(info).to_bytes(2, "big") + info


MINIMAL = {"Header": _component(1, b"\x00" * 10), "Directory": _component(2, b"\x00" * 20),
           "Import": _component(4, b"\x01"), "ConstantPool": _component(5, b"\x00\x00"),
           "Method": _component(7, b"\x00" * 30), "Descriptor": _component(11, b"\x00" * 40),
           "Debug": _component(12, b"\x00" * 50)}


def test_load_size_leaves_out_descriptor_and_debug(tmp_path: Path) -> None:
    cap = parse_cap(_fake_cap(tmp_path / "x.cap", MINIMAL))
    assert cap.load_size == 13 + 23 + 4 + 5 + 33
    assert cap.method_size == 33


@pytest.mark.parametrize(("change", "message"), [
    ({"Method": _component(6, b"\x00")}, "carries tag 6"),
    ({"Method": bytes([7, 0, 9]) + b"\x00" * 3}, "says 9 bytes of info, has 3"),
    ({"Method": b"\x07"}, "fewer than its header"),
])
def test_malformed_components_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(CapError, match=message):
        parse_cap(_fake_cap(tmp_path / "x.cap", {**MINIMAL, **change}))


def test_not_a_cap(tmp_path: Path) -> None:
    (tmp_path / "x.cap").write_bytes(b"not a zip")
    with pytest.raises(CapError, match="not a CAP file"):
        parse_cap(tmp_path / "x.cap")
    missing = dict(MINIMAL)
    del missing["Method"]
    with pytest.raises(CapError, match="no Method component"):
        parse_cap(_fake_cap(tmp_path / "y.cap", missing))


def test_report_needs_every_package(tmp_path: Path) -> None:
    with pytest.raises(ToolchainError, match="isofs"):
        size_report({})
    cap = parse_cap(_fake_cap(tmp_path / "x.cap", MINIMAL))
    with pytest.raises(ToolchainError, match="isocmd"):  # the ISO processor has its own row
        size_report({"isofs": cap})


def test_break_even_reproduces_the_papers_figures() -> None:
    # [P003] Table 4: library 789 bytes, cyclic applet 486 without and 295 with it; ten applets 4,860 -> 3,739.
    assert break_even(789, 486, 295) == 5
    assert 5 * 295 + 789 < 5 * 486 and 4 * 295 + 789 >= 4 * 486
    assert break_even(2363, 574, 189) == 7  # exactly the smallest n with n x 189 + 2363 < n x 574
    assert 7 * 189 + 2363 < 7 * 574 and 6 * 189 + 2363 >= 6 * 574
    assert break_even(100, 50, 50) is None and break_even(100, 40, 50) is None


def test_report_of_the_suite(toolchain, tmp_path: Path, monkeypatch) -> None:
    project = Project.locate()
    if not (project.cap_dir / "isofs.cap").exists():
        pytest.skip("the suite's CAP files are not built: `invoke build` with the Oracle SDK")
    monkeypatch.setattr(Project, "reports", property(lambda self: tmp_path))
    lines: list[str] = []
    report = run_sizes(project, log=lines.append)
    assert (tmp_path / "sizes.json").exists()
    packages, t4 = report["packages"], report["table4"]
    assert t4["paper_package"] == 789
    assert (t4["package_load"], t4["package_method"]) == (packages["isofs"]["load"], packages["isofs"]["method"])
    assert (t4["processor_load"], t4["processor_method"]) == (packages["isocmd"]["load"], packages["isocmd"]["method"])
    for row in t4["applets"]:
        # every applet on the core library is smaller than its twin without it ([P003]: never larger)
        assert row["load_with"] < row["load_without"] and row["method_with"] < row["method_without"]
    ten = report["ten_cyclic_applets"]
    assert (ten["paper"]["without"], ten["paper"]["with"], ten["paper"]["change_percent"]) == (4860, 3739, -23.1)
    assert ten["load"]["without"] == 10 * packages["baseline_cyclic"]["load"]
    assert ten["load"]["with"] == 10 * packages["paper_cyclic"]["load"] + packages["isofs"]["load"]
    # issue 11's goal: ten cyclic applets with the core at least 25% smaller than ten without it
    assert ten["load"]["change_percent"] <= -25.0
    assert ten["load"]["break_even_applets"] <= 10
    assert "Table 4" in lines[0] and "ISO processor" in lines[0] and "pays off from" in lines[0]
