"""SimulatedCard.install on the bridge's EchoApplet: the standard install() parameters (Li AID | Lc 00 | La
params) reach the applet, and an unknown class is refused (host/simbridge/README.md, "SimulatedCard")."""

from __future__ import annotations

import pytest
from cardsuite.project import Project
from cardsuite.sim.bridge import start_jvm

ECHO_AID = bytes.fromhex("F0000000AA0201")


def _card(project: Project):
    start_jvm(project)
    import jpype

    return jpype, jpype.JClass("cardsuite.simbridge.SimulatedCard")(jpype.JString(str(project.bridge_test_classes)))


def _send(jpype, card, apdu: bytes) -> bytes:
    return bytes(card.transmit(jpype.JArray(jpype.JByte)(apdu)))


def test_install_parameters_reach_the_applet(project: Project) -> None:
    jpype, card = _card(project)
    params = bytes.fromhex("C9 03 0A 0B 0C")
    card.install(jpype.JArray(jpype.JByte)(ECHO_AID), jpype.JString("cardsuite.simtest.EchoApplet"),
                 jpype.JArray(jpype.JByte)(params))
    assert _send(jpype, card, bytes([0x00, 0xA4, 0x04, 0x00, len(ECHO_AID)]) + ECHO_AID) == b"\x90\x00"
    assert _send(jpype, card, bytes([0x80, 0x02, 0x00, 0x00, 0x00])) == params + b"\x90\x00"
    assert _send(jpype, card, bytes([0x80, 0x00, 0x00, 0x00, 0x03]) + b"abc") == b"abc\x90\x00"
    assert _send(jpype, card, bytes([0x80, 0x7E, 0x00, 0x00])) == b"\x6d\x00"


def test_an_unknown_class_is_refused(project: Project) -> None:
    jpype, card = _card(project)
    with pytest.raises(jpype.JClass("java.lang.IllegalArgumentException")):
        card.install(jpype.JArray(jpype.JByte)(ECHO_AID), jpype.JString("cardsuite.simtest.NoSuchApplet"),
                     jpype.JArray(jpype.JByte)(b""))
