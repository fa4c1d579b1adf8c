"""What many test folders share, imported as `support` (pytest puts this folder on sys.path for its conftest):
the project, the AIDs read from the manifest rather than repeated in each file, and the wallet's test
secrets. Fixtures live in each folder's conftest.py; this module holds plain values and functions."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cardsuite.tooling.manifest import load_manifest
from cardsuite.wallet.issuer import IssuerSecret

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = load_manifest(ROOT / "applets" / "manifest.toml")
SUITE = ROOT / "profiles" / "cards" / "sim-suite.toml"  # the deploy profile of the whole suite


def package_aid(name: str) -> bytes:
    return MANIFEST.package(name).aid


ECHO_AID = MANIFEST.applet_aid("echo")
ECHO_PACKAGE_AID = package_aid("echo")
ABSENT_AID = ECHO_AID[:-1] + b"\x99"  # the echo package's prefix, an instance no card here holds
WALLET_AID = MANIFEST.applet_aid("wallet")
WALLET_PACKAGE_AID = package_aid("wallet")
ISOFS_PACKAGE_AID = package_aid("isofs")
ISOCMD_PACKAGE_AID = package_aid("isocmd")
ISO_AID = MANIFEST.applet_aid("isoapplet")
ISO_PACKAGE_AID = package_aid("isoapplet")
FSCLIENT_AID = MANIFEST.applet_aid("fsclient")
FILE_KINDS = ("transparent", "record", "cyclic")
PAPER_AIDS = {kind: MANIFEST.applet_aid(f"paper_{kind}") for kind in FILE_KINDS}  # [P003]'s applets
BASELINE_AIDS = {kind: MANIFEST.applet_aid(f"baseline_{kind}") for kind in FILE_KINDS}  # the same, no library
PAPER_PACKAGE_AIDS = {kind: package_aid(f"paper_{kind}") for kind in FILE_KINDS}

def select_hex(aid: bytes) -> str:
    """SELECT by name (ISO 7816-4 11.2.2) as the CLI's `send` takes it."""
    return f"00A40400{len(aid):02X}{aid.hex().upper()}"


def status_word(via, command) -> int:
    """The card's status word for `command`, unchecked; `via` is a transport or a client holding one."""
    return getattr(via, "transport", via).transmit(command).sw


# The wallet's test holder: one PIN and PUK for every test that only needs "the right one".
PIN = "2468"
PUK = "13572468"
NUMBER_SECRET = IssuerSecret.generate("tests")  # H(R-Card) is the issuer's keyed hash

# What profiles/cards/sim-suite.toml puts on an empty card: its packages and instances (hex, sorted as the
# card's registry lists them).
SUITE_PACKAGES = sorted(aid.hex().upper() for aid in (ISOFS_PACKAGE_AID, ISOCMD_PACKAGE_AID,
                                                      *PAPER_PACKAGE_AIDS.values(), ISO_PACKAGE_AID,
                                                      WALLET_PACKAGE_AID))
SUITE_INSTANCES = sorted(aid.hex().upper() for aid in (ISO_AID, *PAPER_AIDS.values(), WALLET_AID))
DEPLOY_ENV = {"CARDSUITE_PIN": PIN, "CARDSUITE_PUK": PUK}  # what a loading station gives `cardsuite deploy`

# What the simulated card manager holds of its own before anything is loaded: its Security Domain package, listed
# by GET STATUS as real cards list theirs ([GPCS] 11.4.2). A deploy leaves it alone (deployer.Requirements.manages):
# deploy tests compare the packages a deploy manages, and check apart that the card's own are still there.
CARD_RESIDENT = ["A0000001515350"]
MANIFEST_PACKAGE_AIDS = frozenset(p.aid for p in MANIFEST.packages)


def managed_load_files(aids: Iterable[bytes]) -> list[str]:
    """The load files among ``aids`` that a deploy manages (the manifest's), hex and sorted."""
    return sorted(aid.hex().upper() for aid in aids if aid in MANIFEST_PACKAGE_AIDS)


def resident_load_files(aids: Iterable[bytes]) -> list[str]:
    """The others: what the card holds of its own, hex and sorted."""
    return sorted(aid.hex().upper() for aid in aids if aid not in MANIFEST_PACKAGE_AIDS)
