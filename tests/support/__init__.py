"""What many test folders share, imported as `support` (pytest puts this folder on sys.path for its conftest):
the project and the AIDs, read from the manifest rather than repeated in each file."""

from __future__ import annotations

from pathlib import Path

from cardsuite.tooling.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = load_manifest(ROOT / "applets" / "manifest.toml")
ECHO_AID = MANIFEST.applet_aid("echo")
