"""The simulated card inside this process, through JPype: the fastest link, and the one that tears."""

from __future__ import annotations

from pathlib import Path

from cardsuite.errors import CardTornError, TransportError
from cardsuite.project import Project
from cardsuite.sim.bridge import (
    DEVELOPMENT_KEY,
    AppletInstall,
    CardManagerConfig,
    manifest_applets,
    manifest_packages,
    start_jvm,
)
from cardsuite.transport.base import Transport

# The buffer a card shares with this process: the longest extended command APDU (4 header bytes, 00, Lc in two
# bytes, 65,535 data bytes, Le in two bytes; ISO 7816-3 12.1.3) and so more than the longest response (65,538).
SHARED_BUFFER = 4 + 3 + 65535 + 2

TORN = "power lost in the middle of the command (simulated tear); reset the card"


class SimulatorTransport(Transport):
    """One independent simulated card in this process (its own jCardSim runtime). Like the card it drives
    (SimulatedCard), one thread at a time: its APDUs go through one buffer shared with the card."""

    def __init__(self, project: Project | None = None, applets: list[AppletInstall] | None = None,
                 name: str = "sim", card_manager: CardManagerConfig | None = None,
                 commit_capacity: int | None = None, *, applet_classpath: Path | None = None) -> None:
        """``applet_classpath``: where the applets' classes are (default the build's simulator classes)."""
        super().__init__()
        self.commit_capacity = commit_capacity  # bytes; None: the bridge's default (5,120, an NXP JCOP 4's)
        self.project = project or Project.locate()
        self.applet_classpath = applet_classpath or self.project.sim_classes
        self.applets = applets
        self.name = name
        self.card_manager = card_manager
        self._card = None
        self._send = None  # the card's transmitShared, bound once: a JPype attribute lookup less per APDU
        self._shared = None  # a java.nio.ByteBuffer over self._view's memory: APDUs in and out, no conversions
        self.manager = None  # the Java CardManager when enabled: counters and life cycle for tests

    def connect(self) -> None:
        if self._card is not None:
            return
        start_jvm(self.project)
        import jpype

        bridge = jpype.JClass("cardsuite.simbridge.SimulatedCard")
        self._jbytes = jpype.JArray(jpype.JByte)
        self._tear_exception = jpype.JClass("cardsuite.simbridge.CardTearException")
        card = bridge(jpype.JString(str(self.applet_classpath)))
        if self.commit_capacity is not None:
            card.setCommitCapacity(self.commit_capacity)
        if self.card_manager is not None:
            self.manager = self._enable_card_manager(card, self.card_manager)
        for applet in self.applets if self.applets is not None else manifest_applets(self.project):
            self._install(card, applet)
        self._card = card
        # JPype converts a byte[] argument and wraps a byte[] result on every call; over a direct ByteBuffer on
        # our own memory only an int goes each way (SimulatedCard.transmitShared)
        import jpype.nio

        buffer = bytearray(SHARED_BUFFER)
        self._view = memoryview(buffer)
        self._shared = jpype.nio.convertToDirectBuffer(buffer)
        self._send = card.transmitShared

    def _install(self, card, applet: AppletInstall) -> None:
        import jpype

        try:
            card.install(self._jbytes(applet.aid), jpype.JString(applet.class_name), self._jbytes(applet.params))
        except jpype.JException as exc:
            raise TransportError(f"cannot install {applet.class_name} ({applet.aid.hex().upper()}): "
                                 f"{exc.message()}") from None

    def install(self, applet: AppletInstall) -> None:
        """Installs one more applet instance on the connected card (its install() runs now)."""
        self._install(self._require(), applet)

    def allocations(self) -> tuple[int, int, int, int]:
        """What applet code allocated in this JVM so far, counted by the bridge (AllocationMeter): persistent
        bytes, CLEAR_ON_RESET bytes, CLEAR_ON_DESELECT bytes, API objects made with `new`. Read it before and
        after an install or a command: the difference is what that one allocated."""
        import jpype

        persistent, on_reset, on_deselect, api = jpype.JClass("cardsuite.simbridge.AllocationMeter").totals()
        return int(persistent), int(on_reset), int(on_deselect), int(api)

    def _enable_card_manager(self, card, config: CardManagerConfig):
        import jpype

        keys = config.keys or (DEVELOPMENT_KEY,) * 3
        scp_i = -1 if config.scp_i is None else config.scp_i
        manager = card.enableCardManager(jpype.JString(config.protocol), scp_i, config.key_version,
                                         *map(self._jbytes, keys))
        if config.auth_limit is not None:
            manager.setAuthenticationLimit(config.auth_limit)
        if config.serial is not None:
            manager.setSerial(self._jbytes(config.serial))
        if config.kdf is not None:
            manager.setDiversifiedKeys(jpype.JString(config.kdf), self._jbytes(keys[0]))
        for aid, java_package in manifest_packages(self.project):
            card.registerLoadable(self._jbytes(aid), jpype.JString(java_package))
        return manager

    def disconnect(self) -> None:
        self._card = None
        self._send = self._shared = None
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
        send, length = self._send, len(command)
        if send is None or length > SHARED_BUFFER or command.__class__ is not bytes:
            return self._transmit_array(command)
        view = self._view
        view[:length] = command
        try:
            answered = send(self._shared, length)
        except self._tear_exception:
            raise CardTornError(TORN) from None
        return view[:answered].tobytes()

    def _transmit_array(self, command: bytes) -> bytes:
        """Through a byte[] each way: not connected here (raises), a card handed over from another transport,
        or a command longer than any APDU (the card answers 6700). JPype converts bytes to the byte[] parameter
        itself; the byte[] answer comes back through the buffer protocol, one copy."""
        card = self._require()
        try:
            return bytes(card.transmit(command))
        except self._tear_exception:
            raise CardTornError(TORN) from None

    # -- tearing, for atomicity tests
    def tear_after_writes(self, writes: int) -> None:
        """The next command loses power at its ``writes``-th persistent write (1 = before the first)."""
        self._require().tearAfterWrites(writes)

    def persistent_write_count(self) -> int:
        """How many persistent writes the last command made: the tear points it has."""
        return int(self._require().persistentWriteCount())

    def commit_bytes(self) -> int:
        """Commit buffer bytes of the largest transaction the last command ran (the bridge's WriteJournal
        says how writes are counted: a 6-byte entry plus the overwritten bytes each)."""
        return int(self._require().commitBytes())

    def operation_count(self, name: str) -> int:
        """How often the last command called a crypto operation of the applet's code, measured by the
        bridge: "MessageDigest.doFinal", "Signature.sign", "Signature.verify", "KeyAgreement.generateSecret",
        "Cipher.doFinal", "KeyPair.genKeyPair"."""
        import jpype

        return int(self._require().operationCount(jpype.JString(name)))
