"""Simulated cards behind pcscd/vpcd: pcscd itself, the vpcd slots, the bridge as a child process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from cardsuite.codec import parse_hex
from cardsuite.errors import TransportError
from cardsuite.masking import RULES_FILE
from cardsuite.project import Project
from cardsuite.settings import ENV_SIM_KEYS
from cardsuite.sim.bridge import (
    JVM_OPTIONS,
    AppletInstall,
    CardManagerConfig,
    _require_built,
    bridge_classpath,
    coverage_options,
    manifest_applets,
    manifest_packages,
)
from cardsuite.transport.pcsc import PcscTransport

VPCD_BASE_PORT = 35963  # Debian's vpcd: slot n listens on 35963 + n


VPCD_READER = "Virtual PCD 00 {slot:02d}"


VPCD_SLOTS = 2  # Debian's vpcd configuration


# VpcdMain's exit status when vpcd never talked to it: the slot's one connection was another card's, and ours
# only waited in the listening socket's queue (a check of the slot and the bridge's start are not one step)
BRIDGE_EXIT_NOT_ATTACHED = 3


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
                 kill_host_at: tuple[int, Path] | None = None, applet_classpath: Path | None = None) -> None:
        """``kill_host_at`` (tests): (N, PID file): the bridge SIGKILLs the process named in the file right
        after the card processed the Nth command APDU, before answering it (bridge option --kill-host-at).
        ``applet_classpath``: where the applets' classes are (default the build's simulator classes)."""
        self.project = project or Project.locate()
        self.applet_classpath = applet_classpath or self.project.sim_classes
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
        cmd = ["java", *JVM_OPTIONS, *coverage_options(self.project), "-cp", classpath,
               "cardsuite.simbridge.vpcd.VpcdMain", "--port", str(self.port),
               "--classpath", str(self.applet_classpath), "--log", str(self.log_path),
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
            if self.card_manager.scp_i is not None:
                cmd += ["--scp-i", f"{self.card_manager.scp_i:02X}"]
            if self.card_manager.auth_limit is not None:
                cmd += ["--auth-limit", str(self.card_manager.auth_limit)]
            if self.card_manager.serial is not None:
                cmd += ["--card-serial", self.card_manager.serial.hex().upper()]
            if self.card_manager.kdf is not None:
                cmd += ["--key-kdf", self.card_manager.kdf]
            for aid, java_package in manifest_packages(self.project):
                cmd += ["--loadable", f"{aid.hex().upper()}:{java_package}"]
        return cmd

    def environment(self) -> dict[str, str]:
        """Keys go to the bridge through its environment, never its command line (visible in `ps`)."""
        env = dict(os.environ)
        env.pop(ENV_SIM_KEYS, None)
        if self.card_manager is not None and self.card_manager.keys is not None:
            env[ENV_SIM_KEYS] = ":".join(key.hex() for key in self.card_manager.keys)
        return env

    def start(self, timeout: float = 20.0) -> VpcdSimulator:
        _require_built(self.project)
        ensure_pcscd()
        if slot_has_card(self.slot):
            raise TransportError(self._slot_taken())
        # The bridge writes its log (and trace) to log_path; stderr only gets what comes before it opens
        # the log (a bad option) or from the JVM itself: little, read when the start fails. stdin is a pipe
        # held open and never written: the bridge exits at its end of file, so a host killed even by SIGKILL
        # takes its bridge (and the vpcd slot it holds) with it. READY comes once vpcd talks to this bridge:
        # a card another process attached meanwhile would otherwise pass _wait_for_card as ours.
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
                self.atr = parse_hex(fields.get("atr", ""), "the bridge's ATR")
                try:
                    self._wait_for_card(deadline)
                except TransportError:
                    self.stop()  # the bridge runs in its own session: never leave it behind
                    raise
                return self
        err = self._terminate()
        not_attached = self.process.returncode == BRIDGE_EXIT_NOT_ATTACHED
        self.stop()
        # another process attached a card to the slot after the check above: vpcd talks to that bridge, and
        # this one's connection waits in vpcd's queue (not attached) or, the queue full, never completes
        # (the bridge's connect times out: once in a CI run, 2026-12-03)
        if not_attached or slot_has_card(self.slot):
            raise TransportError(self._slot_taken())
        raise TransportError(f"the simulator on vpcd port {self.port} did not start: {err or 'timed out'}")

    def _slot_taken(self) -> str:
        return (f"{self.reader} already holds a card: another simulator is attached to vpcd port {self.port} "
                "(stop it, or use another slot)")

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
