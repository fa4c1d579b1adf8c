"""The applet firewall at Shareable interface objects (Java Card RE 3.0.5 6.2.4-6.2.8), on the bridge's
ServerApplet and ClientApplet (two packages): getShareableInterfaceObject runs in the server's context with the
client as the previous one, each call through the object switches context and back, and only global arrays
cross (anything else: SecurityException)."""

from __future__ import annotations

import pytest
from support.bridgecard import BridgeCard, select

SERVER_AID = bytes.fromhex("F0000000AA0301")
CLIENT_AID = bytes.fromhex("F0000000AA0401")
CONTEXTS, LEAK, TAKE, LOOKUP = 0x70, 0x71, 0x72, 0x73


@pytest.fixture
def client(bridge_card: BridgeCard) -> BridgeCard:
    for aid, name in ((SERVER_AID, "server.ServerApplet"), (CLIENT_AID, "client.ClientApplet")):
        bridge_card.card.install(bridge_card._jbytes(aid), f"cardsuite.simtest.{name}", bridge_card._jbytes(b""))
    assert select(bridge_card, 0, CLIENT_AID) == 0x9000
    return bridge_card


def call(card: BridgeCard, ins: int, p1: int = 0, p2: int = 0) -> tuple[bytes, int]:
    return card.transmit(bytes([0x80, ins, p1, p2, 0]))


def test_the_server_runs_in_its_context_with_the_client_as_the_previous_one(client: BridgeCard) -> None:
    """getShareableInterfaceObject saw client-as-previous and itself-as-current (3); inside the interface
    method the same (1, 1); back in the client, JCSystem.getAID is the client again (1)."""
    assert call(client, CONTEXTS) == (bytes([3, 1, 1, 1]), 0x9000)


def test_an_array_of_another_context_does_not_cross(client: BridgeCard) -> None:
    assert call(client, LEAK) == (b"\x01", 0x9000)  # the server's own array returned: SecurityException
    assert call(client, TAKE) == (b"\x01", 0x9000)  # the client's array passed in: SecurityException


def test_no_object_for_an_absent_server_or_a_refused_parameter(client: BridgeCard) -> None:
    assert call(client, LOOKUP, 0x00, 0x00) == (b"", 0x9000)
    assert call(client, LOOKUP, 0x01, 0x00) == (b"", 0x6A82)  # the server answers null
    assert call(client, LOOKUP, 0x00, 0x01) == (b"", 0x6A82)  # no such applet
