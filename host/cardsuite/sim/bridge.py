"""The simulated card: our Java bridge on jCardSim, in-process through JPype or as a virtual card
behind vpcd, with the manifest's applets installed at start."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from cardsuite.errors import ConfigurationError
from cardsuite.keysource import GP_DEVELOPMENT_KEY, EnvironmentSource, parse_key_list
from cardsuite.masking import opaque_eq
from cardsuite.project import Project
from cardsuite.settings import ENV_SIM_KEYS
from cardsuite.tooling.manifest import load_manifest

_jvm_lock = threading.Lock()


@dataclass(frozen=True)
class AppletInstall:
    aid: bytes
    class_name: str
    params: bytes = b""


DEVELOPMENT_KEY = GP_DEVELOPMENT_KEY


@opaque_eq  # pytest's failed-`==` explanation would print the keys field by field
@dataclass(frozen=True)
class CardManagerConfig:
    """The simulated card's GlobalPlatform Issuer Security Domain. ``keys`` (ENC, MAC, DEK) of None are
    the public development keys 40..4F, which only a simulated card may use."""

    protocol: str = "scp03"  # or "scp02"
    key_version: int = 1
    keys: tuple[bytes, bytes, bytes] | None = field(default=None, repr=False)
    scp_i: int | None = None  # the "i" parameter; None: SCP02 55, SCP03 70 (the bridge's defaults)
    auth_limit: int | None = None  # failed authentications before the card locks; None: the bridge's 10
    # "emv", "visa2" (SCP02) or "kdf3" (SCP03): the card's keys are diversified from keys[0], the issuer's master
    # key, with its key diversification data (an issued card); None: keys are the card's static keys as given
    kdf: str | None = None
    serial: bytes | None = None  # the CPLC IC serial number (4 bytes; the KDD derives from it); None: random

    def __post_init__(self) -> None:
        if self.protocol not in ("scp02", "scp03"):
            raise ConfigurationError(f"card manager protocol {self.protocol!r}: use scp02 or scp03")


def simulator_keys(env: Mapping[str, str] | None = None) -> tuple[bytes, bytes, bytes] | None:
    """The simulated card manager's keys from $CARDSUITE_SIM_KEYS (ENC:MAC:DEK or one key, hex), else None:
    the development keys. A default the host's key policy allows because this is the *card's* side: a
    simulated card is a development card, and the host still needs --dev-keys to send those keys."""
    source = EnvironmentSource(os.environ if env is None else env)
    if not source.has(ENV_SIM_KEYS):
        return None
    enc, mac, dek = parse_key_list(source.text(ENV_SIM_KEYS), f"${ENV_SIM_KEYS}", 3)
    return enc, mac, dek


def manifest_packages(project: Project) -> list[tuple[bytes, str]]:
    """(package AID, Java package) of every manifest package: the build's classes stand in for the
    bytecode of a CAP file the card manager loads."""
    return [(p.aid, p.java) for p in load_manifest(project.manifest).packages]


def manifest_applets(project: Project) -> list[AppletInstall]:
    manifest = load_manifest(project.manifest)
    return [AppletInstall(a.aid, p.qualified(a), a.params) for p, a in manifest.simulated_applets()]


def _require_built(project: Project) -> None:
    if not project.bridge_classes.is_dir() or not project.sim_classes.is_dir():
        raise ConfigurationError("the simulator is not built: run `invoke build` first")


# A card's random numbers must be unpredictable: jCardSim's RandomData is deterministic unless asked.
JVM_OPTIONS = ("-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
               "-Dcom.licel.jcardsim.randomdata.secure=1")


def bridge_classpath(project: Project) -> list[str]:
    """The bridge first: it replaces jCardSim's deterministic SecureRandomNullProvider."""
    return [str(project.bridge_classes)] + project.java_classpath()


def start_jvm(project: Project) -> None:
    """Starts the one JVM of this process (JPype allows one) with jCardSim and the bridge on its classpath."""
    try:
        import jpype
    except ImportError:
        raise ConfigurationError("the in-process simulator needs JPype: pip install 'cardsuite[sim]' "
                                 "(or use --card vpcd)") from None

    with _jvm_lock:
        if jpype.isJVMStarted():
            return
        _require_built(project)
        jpype.startJVM(*JVM_OPTIONS, classpath=bridge_classpath(project), convertStrings=False)
        # jCardSim prints chatter ("getInstance of ... is OK!") on System.out: drop it
        stream = jpype.JClass("java.io.PrintStream")
        jpype.JClass("java.lang.System").setOut(stream(jpype.JClass("java.io.OutputStream").nullOutputStream()))
