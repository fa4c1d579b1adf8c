"""The build pipeline: simulator classes always, CAP files where the Oracle SDK is configured, clear
errors for the mistakes users make, and nothing redone when nothing changed."""

import re
import shutil
import textwrap
from pathlib import Path

import pytest
from cardsuite.errors import ToolchainError
from cardsuite.project import Project
from cardsuite.tooling.build import (
    BuildResult,
    build,
    build_caps,
    convert_package,
    plan_groups,
    render_ant_file,
    verifier_errors,
    verify_package,
)
from cardsuite.tooling.manifest import load_manifest
from cardsuite.tooling.toolchain import JavaCardKit, locate_cap_toolchain


@pytest.fixture(scope="module")
def toolchain():
    found, problems = locate_cap_toolchain(Project.locate())
    if found is None:
        pytest.skip("Oracle Java Card SDK or ant-javacard not configured (CARDSUITE_JC_HOME, CARDSUITE_ANT_JAVACARD)")
    return found


def _scratch_project(tmp_path: Path, manifest: str, sources: dict[str, str]) -> Project:
    real = Project.locate()
    (tmp_path / "applets").mkdir()
    (tmp_path / "applets" / "manifest.toml").write_text(textwrap.dedent(manifest))
    shutil.copytree(real.root / "ant", tmp_path / "ant")
    (tmp_path / "deps").symlink_to(real.root / "deps")
    for name, text in sources.items():
        path = tmp_path / "applets" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return Project(tmp_path)


APPLET = """
    package demo.{pkg};
    import javacard.framework.*;
    public class App extends Applet {{
        public static void install(byte[] b, short o, byte l) {{ new App().register(); }}
        public void process(APDU apdu) {{ {body} }}
    }}
"""
ONE_PACKAGE = """
    [[package]]
    name = "{pkg}"
    java = "demo.{pkg}"
    aid = "A00000000201"
    version = "1.0"
    applet = [{{ class = "App", aid = "A0000000020101" }}]
"""


def test_missing_sdk_is_explained_and_simulator_classes_still_built(monkeypatch, tmp_path) -> None:
    project = Project.locate()
    monkeypatch.setenv("CARDSUITE_JC_HOME", str(tmp_path / "no-kit"))
    monkeypatch.setenv("CARDSUITE_ANT_JAVACARD", str(tmp_path / "no.jar"))
    result = build(project, log=lambda _: None)
    assert any("no-kit" in p and "CARDSUITE_JC_HOME" in p for p in result.missing)
    assert any("no.jar" in p and "CARDSUITE_ANT_JAVACARD" in p for p in result.missing)
    assert list(project.sim_classes.rglob("EchoApplet.class"))
    with pytest.raises(ToolchainError, match="cannot build CAP files"):
        build(project, require_cap=True, log=lambda _: None)


def test_a_second_build_with_nothing_changed_does_nothing(project) -> None:
    build(project, log=lambda _: None)
    messages: list[str] = []
    result = build(project, log=messages.append)
    assert result.compiled == [] and result.converted == []
    assert messages == []


def test_a_build_with_nothing_to_do_starts_no_thread_and_no_process(project, monkeypatch) -> None:
    """Issue 13, no-op build: every fingerprint is looked at first, in the calling thread."""
    import subprocess
    import threading

    build(project, log=lambda _: None)

    def refused(*args, **kwargs):
        raise AssertionError("a build with nothing to do started a thread or a process")

    monkeypatch.setattr(threading.Thread, "start", refused)
    monkeypatch.setattr(subprocess, "run", refused)
    monkeypatch.setattr(subprocess, "Popen", refused)
    result = build(project, log=lambda _: None)
    assert result.compiled == [] and result.converted == []


def test_a_build_with_nothing_to_do_imports_no_heavy_module(project) -> None:
    """A fresh interpreter's no-op build (what `invoke build` runs) loads neither the template engine nor the
    JVM bridge, the crypto or the web stack."""
    import subprocess
    import sys

    build(project, log=lambda _: None)
    code = ("import sys; from pathlib import Path; from cardsuite.project import Project; "
            "from cardsuite.tooling.build import build; "
            "r = build(Project(Path(sys.argv[1])), log=lambda _: None); assert not r.compiled and not r.converted; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", code, str(project.root)], capture_output=True, text=True,
                          check=True)
    loaded = set(done.stdout.split())
    assert not loaded & {"jinja2", "jpype", "_jpype", "cryptography", "starlette", "smartcard", "psycopg", "invoke"}


def test_the_java_version_read_from_the_jdk_is_the_one_java_reports(monkeypatch) -> None:
    import re
    import subprocess

    from cardsuite.tooling import toolchain

    reported = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    major = int(re.search(r'version "(\d+)', reported).group(1))
    assert toolchain.java_major() == major
    calls: list[list[str]] = []
    monkeypatch.setattr(toolchain, "run", lambda cmd, **kwargs: calls.append(cmd))
    assert toolchain.java_major() == major and calls == []  # no JVM started for it


def test_an_old_kit_on_a_new_jdk_is_a_clear_mismatch(tmp_path: Path) -> None:
    kit = tmp_path / "jc305u4_kit"
    (kit / "lib").mkdir(parents=True)
    (kit / "lib" / "tools.jar").write_bytes(b"")
    with pytest.raises(ToolchainError, match="JDK/SDK mismatch: the Java Card 3.0 kit .* runs on JDK 8..8, but"):
        JavaCardKit(kit).check("3.0.5", 17)


def test_the_suite_converts_and_a_rebuild_converts_nothing(toolchain, project) -> None:
    manifest = load_manifest(project.manifest)
    first = BuildResult()
    build_caps(project, manifest, toolchain, first, log=lambda _: None)
    for package in manifest.packages:
        assert (project.cap_dir / f"{package.name}.cap").stat().st_size > 0
    second = BuildResult()
    build_caps(project, manifest, toolchain, second, log=lambda _: None)
    assert second.converted == []
    assert sorted(second.up_to_date) == sorted(p.name for p in manifest.packages)


def test_converter_errors_are_reported_although_it_exits_zero(toolchain, tmp_path: Path) -> None:
    body = "long x = apdu.getBuffer()[0]; x++;"
    project = _scratch_project(tmp_path, ONE_PACKAGE.format(pkg="bad"),
                               {"bad/App.java": APPLET.format(pkg="bad", body=body)})
    with pytest.raises(ToolchainError) as caught:
        build_caps(project, load_manifest(project.manifest), toolchain, BuildResult(), log=lambda _: None)
    message = str(caught.value)
    assert "converting package 'bad' failed" in message
    assert "unsupported type long" in message
    assert "Java Card has no long" in message
    assert not (project.cap_dir / "bad.cap").exists()


def test_a_missing_export_file_is_named(toolchain, tmp_path: Path) -> None:
    project = _scratch_project(tmp_path, LIBRARY_AND_USER, {"lib/Lib.java": LIBRARY, "user/App.java": USER})
    manifest = load_manifest(project.manifest)
    ant_file = render_ant_file(project, manifest, toolchain)
    # the importer alone: the library was never converted, so its export file does not exist
    with pytest.raises(ToolchainError, match="(?i)export"):
        convert_package(project, ant_file, manifest.package("user"), log=lambda _: None)


LIBRARY_AND_USER = ONE_PACKAGE.format(pkg="user").replace('version = "1.0"', 'version = "1.0"\nimports = ["lib"]') + """
    [[package]]
    name = "lib"
    java = "demo.lib"
    aid = "A00000000202"
    version = "1.0"
    library = true
"""
LIBRARY = "package demo.lib;\npublic class Lib { public static short one() { return 1; } }\n"
USER = APPLET.format(pkg="user", body="apdu.getBuffer()[0] = (byte) demo.lib.Lib.one();")


def test_every_cap_is_verified_and_a_broken_cap_exp_pair_is_rejected(toolchain, tmp_path: Path) -> None:
    """The off-card verifier's verdict is read from its output (it exits 0 on errors): the user's CAP passes
    against the library it was converted with, and fails, with the verifier's message, once the library's
    export file is one the CAP was not built against (the library changed, its user not converted again)."""
    project = _scratch_project(tmp_path, LIBRARY_AND_USER, {"lib/Lib.java": LIBRARY, "user/App.java": USER})
    manifest = load_manifest(project.manifest)
    result = BuildResult()
    build_caps(project, manifest, toolchain, result, log=lambda _: None)
    assert sorted(result.converted) == ["lib", "user"]
    for name in ("lib", "user"):
        assert "Verification completed with 0 warnings and 0 errors" in (
            project.reports / "convert" / f"{name}.log").read_text()
    ant_file = project.build / "ant" / "build.xml"
    verify_package(project, ant_file, manifest.package("user"))  # the pair as built: passes

    # the library converted again with another API and major version; the user's CAP left as it was
    (project.applets / "lib" / "Lib.java").write_text(
        "package demo.lib;\npublic class Lib { public static byte two() { return 2; } }\n")
    text, changed = re.subn(r'version = "1.0"(\s+library = true)', r'version = "2.0"\1', project.manifest.read_text())
    assert changed == 1
    project.manifest.write_text(text)
    manifest = load_manifest(project.manifest)
    ant_file = render_ant_file(project, manifest, toolchain)
    convert_package(project, ant_file, manifest.package("lib"), log=lambda _: None)
    with pytest.raises(ToolchainError, match="verifying package 'user' failed") as caught:
        verify_package(project, ant_file, manifest.package("user"))
    message = str(caught.value)
    assert "off-card verifier: Error: Version number mismatch on imported package demo/lib" in message
    assert "Verification completed with 0 warnings and 1 error" in message


def test_verifier_output_without_a_clean_summary_is_an_error() -> None:
    failed = ("[verifycap] [ INFO ] Verifying CAP file x.cap\n"
              "[verifycap] [ SEVERE ] Error: Cannot find export file for imported package 0:11:22:33:44:55\n"
              "[verifycap] Verification completed with 0 warnings and 1 error.\n")
    assert verifier_errors(failed) == [
        "off-card verifier: Error: Cannot find export file for imported package 0:11:22:33:44:55",
        "off-card verifier: Verification completed with 0 warnings and 1 error."]
    assert verifier_errors("[verifycap] [ INFO ] Verification completed with 2 warnings and 0 errors.") == []
    assert verifier_errors("[javacard] nothing verified here") == ["the off-card verifier did not run"]


def test_packages_linked_by_imports_convert_in_one_group_in_build_order(tmp_path: Path) -> None:
    manifest = load_manifest(Project.locate().manifest)
    order = manifest.build_order()
    groups = plan_groups(manifest, order, workers=2, weight=lambda p: 1)
    assert sorted(p.name for g in groups for p in g) == sorted(p.name for p in order)
    assert len(groups) == 2
    where = {p.name: i for i, g in enumerate(groups) for p in g}
    for group in groups:
        names = [p.name for p in group]
        for package in group:
            for imported in package.imports:
                assert where[imported] == where[package.name]
                assert names.index(imported) < names.index(package.name)
    assert plan_groups(manifest, order, workers=1, weight=lambda p: 1) == [order]
    # only what is stale: one package alone is one group, whatever the number of workers
    assert plan_groups(manifest, order[-1:], workers=4, weight=lambda p: 1) == [order[-1:]]


def test_a_changed_source_converts_that_package_and_its_importers_only(toolchain, tmp_path: Path) -> None:
    manifest_text = LIBRARY_AND_USER + ONE_PACKAGE.format(pkg="solo").replace("A00000000201", "A00000000203")
    project = _scratch_project(tmp_path, manifest_text, {
        "lib/Lib.java": LIBRARY, "user/App.java": USER,
        "solo/App.java": APPLET.format(pkg="solo", body="return;")})
    manifest = load_manifest(project.manifest)
    build_caps(project, manifest, toolchain, BuildResult(), log=lambda _: None)
    (project.applets / "lib" / "Lib.java").write_text(LIBRARY.replace("return 1;", "return 2;"))
    again = BuildResult()
    build_caps(project, manifest, toolchain, again, log=lambda _: None)
    assert sorted(again.converted) == ["lib", "user"] and again.up_to_date == ["solo"]



def test_a_class_removed_from_the_sources_leaves_the_cap(toolchain, tmp_path: Path) -> None:
    """Moving a class to another package must take it out of the old package's CAP: javac only adds class
    files, so the converter would otherwise keep converting the one compiled before."""
    manifest = """
    [[package]]
    name = "lib"
    java = "demo.lib"
    aid = "A00000000202"
    version = "1.0"
    library = true
    """
    project = _scratch_project(tmp_path, manifest, {
        "lib/Lib.java": "package demo.lib;\npublic class Lib { public static short one() { return 1; } }\n",
        "lib/Gone.java": "package demo.lib;\npublic class Gone { public static short two() { return 2; } }\n"})
    build_caps(project, load_manifest(project.manifest), toolchain, BuildResult(), log=lambda _: None)
    assert "Gone" in (project.build / "jca" / "lib.jca").read_text()
    (project.applets / "lib" / "Gone.java").unlink()
    build_caps(project, load_manifest(project.manifest), toolchain, BuildResult(), log=lambda _: None)
    assert "Gone" not in (project.build / "jca" / "lib.jca").read_text()
