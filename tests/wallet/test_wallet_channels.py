"""The wallet's session on the basic channel while another applet works on a logical channel (Java Card RE 3.0.5
chapter 4): its CLEAR_ON_DESELECT state (the verified PIN) lasts until the wallet itself is deselected or the
card reset, whatever other channels select."""

from __future__ import annotations

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.wallet.card import Limits, Personalisation, WalletClient, manifest_transport_keys
from cardsuite.wallet.sm import IssuerKeys
from support import ISO_AID, NUMBER_SECRET, PIN, PUK
from support.fsmodel import xchg

pytestmark = pytest.mark.isolated

LIMITS = Limits(max_balance=100_000, max_payment=10_000, step_up=5_000)


@pytest.fixture
def wallet(card, project) -> WalletClient:
    """An issued wallet, selected on the basic channel, its PIN verified."""
    perso = Personalisation.for_card("5500000000000004", secret=NUMBER_SECRET, holder=b"channels",
                                     limits=LIMITS, pin=PIN, puk=PUK, keys=IssuerKeys.generate())
    client = WalletClient(card)
    client.provision(manifest_transport_keys(project.manifest), perso)
    client.select()
    client.verify_pin(PIN)
    assert client.pin_tries_left() is None  # verified
    return client


def open_channel(card) -> int:
    response = card.exchange(CommandAPDU(0x00, 0x70, 0x00, 0x00, le=1))  # MANAGE CHANNEL OPEN, number assigned
    assert response.sw == 0x9000
    return response.data[0]


def test_the_wallet_session_outlives_the_iso_applet_selected_on_channel_1(card, wallet: WalletClient) -> None:
    channel = open_channel(card)
    assert channel == 1
    assert xchg(card, channel, 0xA4, 0x04, 0x00, ISO_AID)[1] == 0x9000
    assert wallet.pin_tries_left() is None  # the wallet, still selected on channel 0, still verified
    assert xchg(card, 0x00, 0x70, 0x80, channel)[1] == 0x9000  # MANAGE CHANNEL CLOSE
    assert wallet.pin_tries_left() is None


def test_the_iso_applet_answers_file_commands_on_channel_1_while_the_wallet_is_busy(card, wallet) -> None:
    channel = open_channel(card)
    assert xchg(card, channel, 0xA4, 0x04, 0x00, ISO_AID)[1] == 0x9000
    data, sw = xchg(card, channel, 0xA4, 0x00, 0x04, bytes.fromhex("3F00"), le=256)  # SELECT MF, FCP
    if sw == 0x6E00:
        pytest.skip("the ISO applet takes CLA 00 only: its channel-aware CLA check is issue 11's (branch iso)")
    assert sw == 0x9000
    assert data[:1] == b"\x62"  # an FCP template (ISO 7816-4 5.3.3)
    assert wallet.pin_tries_left() is None


def test_the_wallet_session_ends_with_its_deselection_and_with_reset(card, wallet: WalletClient) -> None:
    assert xchg(card, 0x00, 0xA4, 0x04, 0x00, ISO_AID)[1] == 0x9000  # the basic channel's applet changes
    wallet.select()
    assert wallet.pin_tries_left() == 3
    wallet.verify_pin(PIN)
    card.reset()
    wallet.select()
    assert wallet.pin_tries_left() == 3
