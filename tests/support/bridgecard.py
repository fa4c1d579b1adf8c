"""A SimulatedCard running the bridge's own JournalApplet (host/simbridge/test-applets), and the applet's state
as its INS 40 reads it: the transaction and tearing machinery checked directly, below any applet of the suite."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cardsuite.cla import channel_cla
from cardsuite.project import Project
from cardsuite.sim.bridge import start_jvm

JOURNAL_AID = bytes.fromhex("F0000000AA0101")
JOURNAL_CLASS = "cardsuite.simtest.JournalApplet"
# ChannelApplet (test-applets/cardsuite/simtest/multi): MultiSelectable, a package of its own; installed twice by
# the multi_card fixture, the second told to refuse selection
MULTI_AID = bytes.fromhex("F0000000AA0201")
REFUSING_AID = bytes.fromhex("F0000000AA0202")
MULTI_CLASS = "cardsuite.simtest.multi.ChannelApplet"
MULTI_INFO = 0x50


@dataclass
class Journal:
    """JournalApplet's persistent and transient state, as its INS 40 reads it."""

    raw: bytes

    @property
    def bytes(self) -> bytes:
        return self.raw[:16]

    @property
    def shorts(self) -> list[int]:
        return [int.from_bytes(self.raw[16 + 2 * i:18 + 2 * i], "big") for i in range(8)]

    @property
    def counter(self) -> int:
        return int.from_bytes(self.raw[32:34], "big")

    @property
    def static(self) -> int:
        return int.from_bytes(self.raw[34:36], "big")

    @property
    def flag(self) -> int:
        return self.raw[36]

    @property
    def slot_set(self) -> int:
        return self.raw[37]

    def persistent(self) -> bytes:
        """Everything but the two transient arrays."""
        return self.raw[:38]

    @classmethod
    def all(cls, value: int, slot: int = 0) -> bytes:
        """The persistent part after every field was set to ``value`` (what INS 10 writes)."""
        return bytes([value]) * 32 + bytes([0, value]) * 2 + bytes([value & 1, slot])


class BridgeCard:
    """A SimulatedCard with JournalApplet installed and selected; bytes in, (data, SW) out."""

    def __init__(self, project: Project) -> None:
        start_jvm(project)
        import jpype

        if not list(project.bridge_test_classes.rglob("JournalApplet.class")):
            raise AssertionError(f"the bridge's test applets are not built in {project.bridge_test_classes}: "
                                 "run `invoke build`")
        self._jbytes = jpype.JArray(jpype.JByte)
        self.torn = jpype.JClass("cardsuite.simbridge.CardTearException")
        self.card = jpype.JClass("cardsuite.simbridge.SimulatedCard")(jpype.JString(str(project.bridge_test_classes)))
        self.card.install(self._jbytes(JOURNAL_AID), jpype.JString(JOURNAL_CLASS), self._jbytes(b""))
        self.select()

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        response = bytes(self.card.transmit(self._jbytes(apdu)))
        return response[:-2], int.from_bytes(response[-2:], "big")

    def select(self) -> None:
        assert self.transmit(bytes([0x00, 0xA4, 0x04, 0x00, len(JOURNAL_AID)]) + JOURNAL_AID)[1] == 0x9000

    def send(self, ins: int, value: int = 0, data: bytes = b"") -> int:
        apdu = bytes([0x80, ins, value, 0x00]) + (bytes([len(data)]) + data if data else b"")
        return self.transmit(apdu)[1]

    def read(self) -> Journal:
        data, sw = self.transmit(bytes([0x80, 0x40, 0x00, 0x00, 0x00]))
        assert sw == 0x9000
        return Journal(data)

    def writes(self, ins: int, value: int = 0, data: bytes = b"") -> int:
        """Persistent writes one command makes (it runs: call it on a state the test restores after)."""
        assert self.send(ins, value, data) == 0x9000
        return int(self.card.persistentWriteCount())

    def torn_send(self, writes: int, ins: int, value: int = 0, data: bytes = b"") -> None:
        """Sends a command that loses power at its ``writes``-th persistent write, then powers up and selects."""
        self.card.tearAfterWrites(writes)
        with pytest.raises(self.torn):
            self.send(ins, value, data)
        self.card.reset()
        self.select()


def install_channel_applets(card: BridgeCard) -> BridgeCard:
    card.card.install(card._jbytes(MULTI_AID), MULTI_CLASS, card._jbytes(b""))
    card.card.install(card._jbytes(REFUSING_AID), MULTI_CLASS, card._jbytes(b"\x00"))
    return card


def select(card: BridgeCard, channel: int, aid: bytes) -> int:
    return card.transmit(bytes([channel_cla(channel), 0xA4, 0x04, 0x00, len(aid)]) + aid)[1]


def manage(card: BridgeCard, origin: int, p1: int, p2: int, le: bytes = b"") -> tuple[bytes, int]:
    """MANAGE CHANNEL (ISO 7816-4 11.1.2) from ``origin``: P1 00 open, 80 close."""
    return card.transmit(bytes([channel_cla(origin), 0x70, p1, p2]) + le)


def info(card: BridgeCard, channel: int, proprietary: bool = True) -> bytes:
    """ChannelApplet's INFO on ``channel`` (its class comment lists the bytes)."""
    data, sw = card.transmit(bytes([channel_cla(channel, proprietary), MULTI_INFO, 0, 0, 0]))
    assert sw == 0x9000
    return data
