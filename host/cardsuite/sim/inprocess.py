"""The simulated card inside this process, through JPype: the fastest link, and the one that tears."""

from __future__ import annotations

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
