"""The pinned downloads: every file checked by SHA-256, nothing half-written on a mismatch. Served from
a local file (urllib reads file:// URLs) since this machine is offline."""

import dataclasses
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
from cardsuite.errors import ToolchainError
from cardsuite.project import Project
from cardsuite.tooling import toolchain


def _pinned_kit() -> Path:
    kit, _ = toolchain.locate_cap_toolchain(Project.locate())
    if kit is None or kit.kit.path.name != toolchain.SDK_KIT_NAME:
        pytest.skip(f"needs the pinned kit {toolchain.SDK_KIT_NAME} configured (CARDSUITE_JC_HOME)")
    return kit.kit.path


def _archive(kit: Path, tmp_path: Path, tamper: str | None = None) -> str:
    """A tarball shaped like the upstream one: <repo>-<commit>/<kit>/..., optionally with one file changed."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(kit.rglob("*")):
            if path.is_file():
                relative = f"{kit.name}/{path.relative_to(kit)}"
                data = path.read_bytes() + (b"x" if relative == tamper else b"")
                info = tarfile.TarInfo(f"oracle_javacard_sdks-{toolchain.SDK_ARCHIVE.version}/{relative}")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    target = tmp_path / "sdk.tar.gz"
    target.write_bytes(buffer.getvalue())
    return target.as_uri()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("CARDSUITE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_kit_is_extracted_and_verified_file_by_file(cache, tmp_path, monkeypatch) -> None:
    kit = _pinned_kit()
    url = _archive(kit, tmp_path)
    monkeypatch.setattr(toolchain, "SDK_ARCHIVE", dataclasses.replace(toolchain.SDK_ARCHIVE, url=url))
    fetched = toolchain.fetch_kit(log=lambda _: None)
    assert fetched.path == cache / "sdks" / toolchain.SDK_KIT_NAME
    for name, digest in toolchain.kit_checksums().items():
        assert toolchain.sha256_of(cache / "sdks" / name) == digest
    assert os.access(fetched.path / "bin" / "converter.sh", os.X_OK)


def test_a_tampered_kit_file_is_refused_and_nothing_is_left(cache, tmp_path, monkeypatch) -> None:
    kit = _pinned_kit()
    url = _archive(kit, tmp_path, tamper=f"{kit.name}/lib/tools.jar")
    monkeypatch.setattr(toolchain, "SDK_ARCHIVE", dataclasses.replace(toolchain.SDK_ARCHIVE, url=url))
    with pytest.raises(ToolchainError, match="lib/tools.jar in the SDK archive does not match its pinned SHA-256"):
        toolchain.fetch_kit(log=lambda _: None)
    assert not list((cache / "sdks").iterdir())


def test_an_ant_javacard_with_another_digest_is_refused(cache, tmp_path, monkeypatch) -> None:
    impostor = tmp_path / "ant-javacard.jar"
    impostor.write_bytes(b"not the pinned release")
    monkeypatch.setattr(toolchain, "ANT_JAVACARD", dataclasses.replace(toolchain.ANT_JAVACARD, url=impostor.as_uri()))
    with pytest.raises(ToolchainError, match=f"expected {toolchain.ANT_JAVACARD.sha256}"):
        toolchain.fetch_ant_javacard(log=lambda _: None)
    assert not (cache / f"ant-javacard-{toolchain.ANT_JAVACARD.version}.jar").exists()


def test_offline_download_says_how_to_supply_a_local_copy(cache, monkeypatch) -> None:
    missing = Path("/nonexistent/ant-javacard.jar").as_uri()
    monkeypatch.setattr(toolchain, "ANT_JAVACARD", dataclasses.replace(toolchain.ANT_JAVACARD, url=missing))
    with pytest.raises(ToolchainError, match="Supply a local copy instead: CARDSUITE_JC_HOME / CARDSUITE_ANT_JAVACARD"):
        toolchain.fetch_ant_javacard(log=lambda _: None)


def test_gp_jar_is_refused_while_no_release_checksum_is_pinned(cache, tmp_path, monkeypatch) -> None:
    served = tmp_path / "gp.jar"
    served.write_bytes(b"any jar")
    monkeypatch.setattr(toolchain, "GP_JAR", dataclasses.replace(toolchain.GP_JAR, url=served.as_uri()))
    assert toolchain.GP_JAR.sha256 is None  # see GP_JAR: no checksum of the release could be verified
    with pytest.raises(ToolchainError, match="no SHA-256 is pinned for gp.jar v26.02.11 .*set CARDSUITE_GP_JAR"):
        toolchain.fetch_gp_jar(log=lambda _: None)
    assert not cache.exists() or not list(cache.iterdir())


def test_a_pinned_gp_jar_is_fetched_and_checked(cache, tmp_path, monkeypatch) -> None:
    served = tmp_path / "gp.jar"
    served.write_bytes(b"the release")
    pin = dataclasses.replace(toolchain.GP_JAR, url=served.as_uri(), sha256=hashlib.sha256(b"the release").hexdigest())
    monkeypatch.setattr(toolchain, "GP_JAR", pin)
    jar = toolchain.fetch_gp_jar(log=lambda _: None)
    assert jar == cache / "gp-v26.02.11.jar" and jar.read_bytes() == b"the release"
    served.write_bytes(b"an impostor")
    jar.unlink()
    with pytest.raises(ToolchainError, match=f"expected {pin.sha256}"):
        toolchain.fetch_gp_jar(log=lambda _: None)
    assert not jar.exists()
