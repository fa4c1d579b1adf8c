"""The manifest is validated before anything is built, with messages that say what to fix."""

from pathlib import Path

import pytest
from cardsuite.errors import ConfigurationError
from cardsuite.tooling.manifest import ImportCycleError, import_order, load_manifest

LIBRARY = """
[[package]]
name = "lib"
java = "x.lib"
aid = "A000000001"
version = "1.0"
library = true
"""


def _manifest(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "manifest.toml"
    path.write_text(text)
    return path


def _app(name: str, aid: str, applet_aid: str, imports: str = "[]") -> str:
    return f"""
[[package]]
name = "{name}"
java = "x.{name}"
aid = "{aid}"
version = "1.0"
imports = {imports}
applet = [{{ class = "App", aid = "{applet_aid}" }}]
"""


def test_the_projects_manifest_loads_and_orders_libraries_first(project) -> None:
    manifest = load_manifest(project.manifest)
    order = [p.name for p in manifest.build_order()]
    for package in manifest.packages:
        for dep in package.imports:
            assert order.index(dep) < order.index(package.name)


def test_importers_come_after_their_library(tmp_path: Path) -> None:
    text = _app("app", "A00000000102", "A0000000010201", '["lib"]') + LIBRARY
    manifest = load_manifest(_manifest(tmp_path, text))
    assert [p.name for p in manifest.build_order()] == ["lib", "app"]


def test_applet_aid_must_start_with_the_package_rid(tmp_path: Path) -> None:
    text = _app("app", "A00000000102", "B0000000010201")
    with pytest.raises(ConfigurationError, match="does not start with the package RID A000000001"):
        load_manifest(_manifest(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_app("app", "A00000000102", "A0000000010201", '["nope"]'), "imports unknown package 'nope'"),
        (_app("app", "A00000000102", "A0000000010201") + _app("app2", "A00000000103", "A0000000010201"),
         "aid A0000000010201 used by 'app' and 'app2'"),
        (_app("app", "A000", "A0000000010201"), "has 2 bytes; an AID has 5 to 16"),
        ("[build]\ntargetsdk = '2.1'\n", "targetsdk '2.1' is not one of"),
        ("[[package]]\nname = 'x'\n", "missing 'java'"),
        ("[[package]\n", "manifest.toml"),
    ],
)
def test_bad_manifests_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_manifest(_manifest(tmp_path, text))


def test_import_cycles_are_refused(tmp_path: Path) -> None:
    text = LIBRARY.replace("library = true", 'library = true\nimports = ["lib2"]') + LIBRARY.replace(
        '"lib"', '"lib2"').replace("x.lib", "x.lib2").replace("A000000001", "A000000002").replace(
        "library = true", 'library = true\nimports = ["lib"]')
    with pytest.raises(ConfigurationError, match="import cycle lib -> lib2 -> lib"):
        load_manifest(_manifest(tmp_path, text))


IMPORTS = {"wallet": ["crypto", "util"], "ecash": ["wallet", "util"], "crypto": ["util"], "util": [], "echo": []}


def test_import_order_puts_imports_first_and_keeps_the_given_order_otherwise() -> None:
    order = import_order(["echo", "ecash", "wallet", "crypto", "util"], IMPORTS.__getitem__)
    assert order == ["echo", "util", "crypto", "wallet", "ecash"]
    assert import_order(["util", "echo"], IMPORTS.__getitem__) == ["util", "echo"]
    for package, imported in IMPORTS.items():
        assert all(order.index(i) < order.index(package) for i in imported)


def test_import_order_names_the_cycle() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["b"], "d": []}
    with pytest.raises(ImportCycleError) as cycle:
        import_order(["d", "a"], graph.__getitem__)
    assert cycle.value.chain == ["b", "c", "b"]
    assert str(cycle.value) == "import cycle b -> c -> b"
    with pytest.raises(ImportCycleError, match="import cycle a -> a"):
        import_order(["a"], {"a": ["a"]}.__getitem__)


def test_the_host_defaults_name_the_manifest_applets() -> None:
    """The host's default AIDs (a client needs one before any manifest is at hand) are the manifest's, not a
    second definition that could drift from it."""
    from cardsuite.cli.fs import ISO_APPLET_AID
    from cardsuite.wallet.card import WALLET_AID
    from support import ISO_AID
    from support import WALLET_AID as MANIFEST_WALLET_AID

    assert (WALLET_AID, ISO_APPLET_AID) == (MANIFEST_WALLET_AID, ISO_AID)
