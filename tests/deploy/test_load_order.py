"""The deploy's load order comes from the manifest's one import ordering: a package's imports that the profile
also loads go first, imports already on the card order nothing, and a cycle is refused naming the packages."""

from __future__ import annotations

import pytest
from cardsuite.deploy.deployer import DeployError, PackageNeed, Requirements

LIB, APP, OTHER, PLATFORM = (bytes.fromhex(h) for h in ("A00000000101", "A00000000102", "A00000000103",
                                                       "A0000000620001"))


def _needs(*packages: tuple[str, bytes, tuple[bytes, ...]]) -> Requirements:
    # only the ordering is under test: no project, profile or CAP file behind these needs
    needs = Requirements.__new__(Requirements)
    needs._packages = {aid: PackageNeed(name, aid, (), imports, ()) for name, aid, imports in packages}
    return needs


def test_imports_in_the_profile_load_first_others_keep_the_profile_order() -> None:
    needs = _needs(("other", OTHER, ()), ("app", APP, (LIB, PLATFORM)), ("lib", LIB, (PLATFORM,)))
    assert [need.name for need in needs._load_order()] == ["other", "lib", "app"]


def test_an_import_cycle_is_refused_naming_it() -> None:
    needs = _needs(("app", APP, (LIB,)), ("lib", LIB, (APP,)))
    with pytest.raises(DeployError, match=r"package app imports itself through a cycle \(app -> lib -> app\)"):
        needs._load_order()
