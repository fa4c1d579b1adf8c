"""The simulated card: our Java bridge on jCardSim, in-process through JPype or as a virtual card
behind vpcd, with the manifest's applets installed at start."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CardTornError, ConfigurationError, TransportError
from .manifest import load_manifest
from .masking import RULES_FILE, opaque_eq
from .project import Project
from .transport import PcscTransport, Transport, apdu_timeout

VPCD_BASE_PORT = 35963  # Debian's vpcd: slot n listens on 35963 + n
VPCD_READER = "Virtual PCD 00 {slot:02d}"
VPCD_SLOTS = 2  # Debian's vpcd configuration
_jvm_lock = threading.Lock()


@dataclass(frozen=True)
class AppletInstall:
    aid: bytes
    class_name: str
    params: bytes = b""


DEVELOPMENT_KEY = bytes(range(0x40, 0x50))  # GlobalPlatform's well-known test key


@opaque_eq  # pytest's failed-`==` explanation would print the keys field by field
@dataclass(frozen=True)
class CardManagerConfig:
    """The simulated card's GlobalPlatform Issuer Security Domain. ``keys`` (ENC, MAC, DEK) of None are
    the public development keys 40..4F, which only a simulated card may use."""

    protocol: str = "scp03"  # or "scp02"
    key_version: int = 1
    keys: tuple[bytes, bytes, bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.protocol not in ("scp02", "scp03"):
            raise ConfigurationError(f"card manager protocol {self.protocol!r}: use scp02 or scp03")


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
    import jpype

    with _jvm_lock:
        if jpype.isJVMStarted():
            return
        _require_built(project)
        jpype.startJVM(*JVM_OPTIONS, classpath=bridge_classpath(project), convertStrings=False)
        # jCardSim prints chatter ("getInstance of ... is OK!") on System.out: drop it
        stream = jpype.JClass("java.io.PrintStream")
        jpype.JClass("java.lang.System").setOut(stream(jpype.JClass("java.io.OutputStream").nullOutputStream()))


class SimulatorTransport(Transport):
    """One independent simulated card in this process (its own jCardSim runtime)."""

    def __init__(self, project: Project | None = None, applets: list[AppletInstall] | None = None,
                 name: str = "sim", card_manager: CardManagerConfig | None = None) -> None:
        super().__init__()
        self.project = project or Project.locate()
        self.applets = applets
        self.name = name
        self.card_manager = card_manager
        self._card = None
        self.manager = None  # the Java CardManager when enabled: counters and life cycle for tests

    def connect(self) -> None:
        if self._card is not None:
            return
        start_jvm(self.project)
        import jpype

        bridge = jpype.JClass("cardsuite.simbridge.SimulatedCard")
        self._jbytes = jpype.JArray(jpype.JByte)
        self._tear_exception = jpype.JClass("cardsuite.simbridge.CardTearException")
        card = bridge(jpype.JString(str(self.project.sim_classes)))
        if self.card_manager is not None:
            self.manager = self._enable_card_manager(card, self.card_manager)
        for applet in self.applets if self.applets is not None else manifest_applets(self.project):
            try:
                card.install(self._jbytes(applet.aid), jpype.JString(applet.class_name), self._jbytes(applet.params))
            except jpype.JException as exc:
                raise TransportError(f"cannot install {applet.class_name} ({applet.aid.hex().upper()}): "
                                     f"{exc.message()}") from None
        self._card = card

    def _enable_card_manager(self, card, config: CardManagerConfig):
        import jpype

        keys = config.keys or (DEVELOPMENT_KEY,) * 3
        manager = card.enableCardManager(jpype.JString(config.protocol), -1, config.key_version,
                                         *map(self._jbytes, keys))
        for aid, java_package in manifest_packages(self.project):
            card.registerLoadable(self._jbytes(aid), jpype.JString(java_package))
        return manager

    def disconnect(self) -> None:
        self._card = None
        self.manager = None

    def _require(self):
        if self._card is None:
            raise TransportError("the simulated card is not connected")
        return self._card

    @property
    def atr(self) -> bytes:
        return bytes(self._require().atr())

    def reset(self) -> bytes:
        self._require().reset()
        return self.atr

    def transmit_raw(self, command: bytes) -> bytes:
        card = self._require()
        try:
            return bytes(card.transmit(self._jbytes(command)))
        except self._tear_exception:
            raise CardTornError("power lost in the middle of the command (simulated tear); reset the card") from None

    # -- tearing, for atomicity tests
    def tear_after_writes(self, writes: int) -> None:
        """The next command loses power at its ``writes``-th persistent write (1 = before the first)."""
        self._require().tearAfterWrites(writes)

    def persistent_write_count(self) -> int:
        """How many persistent writes the last command made: the tear points it has."""
        return int(self._require().persistentWriteCount())

    def operation_count(self, name: str) -> int:
        """How often the last command called a crypto operation of the applet's code, measured by the
        bridge: "MessageDigest.doFinal", "Signature.sign", "Signature.verify", "KeyAgreement.generateSecret",
        "Cipher.doFinal", "KeyPair.genKeyPair"."""
        import jpype

        return int(self._require().operationCount(jpype.JString(name)))


# ---------------------------------------------------------------- pcscd and vpcd


def pcscd_running() -> bool:
    return subprocess.run(["pidof", "pcscd"], capture_output=True).returncode == 0


def ensure_pcscd(log=print, timeout: float = 10.0) -> None:
    """Starts pcscd in the background when it is not running (there is no systemd here)."""
    if pcscd_running():
        return
    if shutil.which("pcscd") is None:
        raise TransportError("pcscd is not installed; run `invoke setup`")
    log("starting pcscd")
    subprocess.Popen(["pcscd", "--foreground"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(name.startswith("Virtual PCD") for name in PcscTransport.reader_names()):
                return
        except TransportError:
            pass
        time.sleep(0.1)
    raise TransportError("pcscd started but no vpcd reader appeared; is vsmartcard-vpcd installed?")


def slot_has_card(slot: int) -> bool:
    """Whether something (another simulator) already answers on this vpcd slot. Asks pcscd for the
    reader's state instead of connecting: a probing connection would reset a card in use."""
    from smartcard.scard import (
        SCARD_S_SUCCESS,
        SCARD_SCOPE_USER,
        SCARD_STATE_PRESENT,
        SCARD_STATE_UNAWARE,
        SCardEstablishContext,
        SCardGetStatusChange,
        SCardReleaseContext,
    )

    name = VPCD_READER.format(slot=slot)
    hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
    if hresult != SCARD_S_SUCCESS:
        raise TransportError("cannot talk to pcscd: is it running?")
    try:
        hresult, states = SCardGetStatusChange(context, 0, [(name, SCARD_STATE_UNAWARE)])
        if hresult != SCARD_S_SUCCESS:
            raise TransportError(f"no reader {name!r}: is vsmartcard-vpcd installed and pcscd running?")
        return bool(states[0][1] & SCARD_STATE_PRESENT)
    finally:
        SCardReleaseContext(context)


def free_slots() -> list[int]:
    return [slot for slot in range(VPCD_SLOTS) if not slot_has_card(slot)]


class VpcdSimulator:
    """A simulated card as a separate JVM attached to vpcd slot ``slot``: any PC/SC program sees it."""

    def __init__(self, project: Project | None = None, slot: int = 0, applets: list[AppletInstall] | None = None,
                 trace: bool = False, card_manager: CardManagerConfig | None = None, *,
                 kill_host_at: tuple[int, Path] | None = None) -> None:
        """``kill_host_at`` (tests): (N, PID file): the bridge SIGKILLs the process named in the file right
        after the card processed the Nth command APDU, before answering it (bridge option --kill-host-at)."""
        self.project = project or Project.locate()
        self.kill_host_at = kill_host_at
        self.slot = slot
        self.applets = applets if applets is not None else manifest_applets(self.project)
        self.trace = trace
        self.card_manager = card_manager
        self.process: subprocess.Popen | None = None
        self.atr: bytes = b""

    @property
    def port(self) -> int:
        return VPCD_BASE_PORT + self.slot

    @property
    def log_path(self) -> Path:
        return self.project.build / "sim" / f"vpcd-slot{self.slot}.log"

    @property
    def reader(self) -> str:
        return VPCD_READER.format(slot=self.slot)

    def command(self) -> list[str]:
        """The bridge logs to ``log_path`` itself (mode 0600) and masks its trace with the host's rules."""
        classpath = ":".join(bridge_classpath(self.project))
        cmd = ["java", *JVM_OPTIONS, "-cp", classpath,
               "cardsuite.simbridge.VpcdMain", "--port", str(self.port),
               "--classpath", str(self.project.sim_classes), "--log", str(self.log_path),
               "--mask-rules", str(RULES_FILE), "--exit-on-stdin-eof"]
        for applet in self.applets:
            spec = f"{applet.aid.hex().upper()}:{applet.class_name}"
            if applet.params:
                spec += f":{applet.params.hex().upper()}"
            cmd += ["--applet", spec]
        if self.trace:
            cmd.append("--trace")
        if self.kill_host_at is not None:
            cmd += ["--kill-host-at", f"{self.kill_host_at[0]}:{self.kill_host_at[1]}"]
        if self.card_manager is not None:
            cmd += ["--card-manager", self.card_manager.protocol, "--key-version", str(self.card_manager.key_version)]
            for aid, java_package in manifest_packages(self.project):
                cmd += ["--loadable", f"{aid.hex().upper()}:{java_package}"]
        return cmd

    def environment(self) -> dict[str, str]:
        """Keys go to the bridge through its environment, never its command line (visible in `ps`)."""
        env = dict(os.environ)
        env.pop("CARDSUITE_SIM_KEYS", None)
        if self.card_manager is not None and self.card_manager.keys is not None:
            env["CARDSUITE_SIM_KEYS"] = ":".join(key.hex() for key in self.card_manager.keys)
        return env

    def start(self, timeout: float = 20.0) -> VpcdSimulator:
        _require_built(self.project)
        ensure_pcscd()
        if slot_has_card(self.slot):
            raise TransportError(
                f"{self.reader} already holds a card: another simulator is attached to vpcd port {self.port} "
                "(stop it, or use another slot)"
            )
        # The bridge writes its log (and trace) to log_path; stderr only gets what comes before it opens
        # the log (a bad option) or from the JVM itself: little, read when the start fails. stdin is a pipe
        # held open and never written: the bridge exits at its end of file, so a host killed even by SIGKILL
        # takes its bridge (and the vpcd slot it holds) with it.
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, start_new_session=True,
                                        env=self.environment())
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if line.startswith("READY"):
                fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
                self.atr = bytes.fromhex(fields.get("atr", ""))
                try:
                    self._wait_for_card(deadline)
                except TransportError:
                    self.stop()  # the bridge runs in its own session: never leave it behind
                    raise
                return self
        err = self._terminate()
        self.stop()
        raise TransportError(f"the simulator on vpcd port {self.port} did not start: {err or 'timed out'}")

    def _terminate(self) -> str:
        """Ends the bridge; what it wrote to stderr and its log, for the error message."""
        assert self.process is not None and self.process.stderr is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return (self.process.stderr.read() + log).strip()

    def _wait_for_card(self, deadline: float) -> None:
        """pcscd polls vpcd; wait until it reports the card present so the first connect succeeds."""
        while time.monotonic() < deadline:
            if slot_has_card(self.slot):
                return
            time.sleep(0.05)
        raise TransportError(f"{self.reader} did not report the simulated card in time")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            # pcscd needs a moment to see the card go; restarting at once can leave the reader "no card"
            time.sleep(1.0)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        self.process = None

    def transport(self) -> PcscTransport:
        return PcscTransport(self.reader)

    def __enter__(self) -> VpcdSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def open_transport(spec: str, project: Project | None = None, timeout: float | str | None = None) -> Transport:
    """'sim' (in-process), 'vpcd[:slot]' (a simulator must be attached), 'reader:<name or index>';
    ``timeout`` the per-APDU timeout of a PC/SC card (see transport.apdu_timeout)."""
    if spec == "sim":
        return SimulatorTransport(project)
    if spec == "vpcd" or spec.startswith("vpcd:"):
        slot = spec[len("vpcd:"):] or "0"
        if not (slot.isascii() and slot.isdigit()):
            raise ConfigurationError(f"card {spec!r}: vpcd takes a slot number (vpcd:0, vpcd:1)")
        return PcscTransport(VPCD_READER.format(slot=int(slot)), apdu_timeout(timeout))
    if spec.startswith("reader:"):
        return PcscTransport(spec.split(":", 1)[1], apdu_timeout(timeout))
    raise ConfigurationError(f"unknown card {spec!r}: use sim, vpcd[:slot] or reader:<name or index>")

