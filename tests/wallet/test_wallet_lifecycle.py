"""Life cycle: INSTALLED → PERSONALISED (once) → ACTIVE ⇄ BLOCKED, TERMINATED; commands a state does
not allow get 6985. Personalisation, limits and credit by the issuer, and the class/instruction checks."""

from __future__ import annotations

import pytest
from cardsuite.apdu import CommandAPDU, StatusError
from cardsuite.errors import TransportError
from cardsuite.wallet.card import (
    WALLET_AID,
    Limits,
    Personalisation,
    WalletClient,
    WalletLifeCycle,
    pin_block,
)
from cardsuite.wallet.sm import IssuerKeys
from support import NUMBER_SECRET, PIN, status_word

LIMITS = Limits(max_balance=50_000, max_payment=20_000, step_up=10_000)
ISSUER = IssuerKeys.generate()
ITEM = b"ticket"
MERCHANT = b"TRAIN001"

# one command of each kind, plain, for the state checks
HOLDER_COMMANDS = {
    "VERIFY": CommandAPDU(0x00, 0x20, 0, 0x81, pin_block(PIN)),
    "GET BALANCE": CommandAPDU(0x80, 0x5C, 0, 0, le=4),
    "READ RECORD": CommandAPDU(0x00, 0xB2, 1, 0x0C, le=29),
    "PAY": WalletClient.pay_command(10, MERCHANT, ITEM, 1),
}


def _perso(keys: IssuerKeys = ISSUER, pin: str = PIN) -> Personalisation:
    return Personalisation.for_card("6011000990139424", secret=NUMBER_SECRET,
                                    holder=b"Lee", limits=LIMITS, pin=pin, puk="00000000", keys=keys)


@pytest.fixture
def fresh(card, project) -> WalletClient:
    client = WalletClient(card)
    client.select()
    return client


@pytest.mark.isolated
@pytest.mark.e2e
def test_life_cycle_from_installed_to_terminated(fresh: WalletClient, transport_keys: IssuerKeys) -> None:
    status = fresh.status()
    assert (status.state, status.key_version) == (WalletLifeCycle.INSTALLED, 0xFF)
    for name, command in HOLDER_COMMANDS.items():
        assert status_word(fresh, command) == 0x6985, name
    assert status_word(fresh, CommandAPDU(0x80, 0x48, 0, 0, le=65)) == 0x6985  # no key pair yet

    fresh.open_issuer_session(transport_keys)
    fresh.personalise(_perso())
    assert fresh.status().state == WalletLifeCycle.PERSONALISED
    assert len(fresh.get_public_key()) == 65
    fresh.verify_pin(PIN)  # the holder may already use the PIN
    assert status_word(fresh, HOLDER_COMMANDS["PAY"]) == 0x6985  # but not pay
    fresh.open_issuer_session(ISSUER)
    with pytest.raises(StatusError) as caught:
        fresh.personalise(_perso())
    assert caught.value.sw == 0x6985  # once only

    fresh.open_issuer_session(ISSUER)
    fresh.activate()
    fresh.credit(1_000)
    fresh.verify_pin(PIN)
    fresh.pay(10, MERCHANT, ITEM)

    fresh.block()
    assert fresh.status().state == WalletLifeCycle.BLOCKED
    for name, command in HOLDER_COMMANDS.items():
        assert status_word(fresh, command) == 0x6985, name
    with pytest.raises(StatusError) as caught:
        fresh.credit(1)
    assert caught.value.sw == 0x6985
    fresh.unblock()
    fresh.verify_pin(PIN)
    assert fresh.get_balance() == 990

    fresh.open_issuer_session(ISSUER)
    fresh.terminate()
    assert fresh.status().state == WalletLifeCycle.TERMINATED
    for name, command in {**HOLDER_COMMANDS, "GET PUBLIC KEY": CommandAPDU(0x80, 0x48, 0, 0, le=65),
                          "INITIALIZE UPDATE": CommandAPDU(0x80, 0x50, 0, 0, bytes(8), le=256)}.items():
        assert status_word(fresh, command) == 0x6985, name
    assert status_word(fresh, CommandAPDU(0x84, 0xF0, 0x04, 0, bytes(16))) == 0x6982  # the session ended too


@pytest.mark.isolated
def test_transitions_the_life_cycle_does_not_allow(fresh: WalletClient, transport_keys: IssuerKeys) -> None:
    fresh.open_issuer_session(transport_keys)
    with pytest.raises(StatusError) as caught:
        fresh.activate()  # not personalised
    assert caught.value.sw == 0x6985
    fresh.personalise(_perso())
    fresh.open_issuer_session(ISSUER)
    for target, sw in ((WalletLifeCycle.BLOCKED, 0x6985), (WalletLifeCycle.PERSONALISED, 0x6A86),
                       (WalletLifeCycle.INSTALLED, 0x6A86)):
        with pytest.raises(StatusError) as caught:
            fresh.set_status(target)
        assert caught.value.sw == sw
    assert fresh.status().state == WalletLifeCycle.PERSONALISED


@pytest.mark.isolated
def test_bad_personalisation_leaves_the_card_installed(fresh: WalletClient, transport_keys: IssuerKeys) -> None:
    fresh.open_issuer_session(transport_keys)
    good = _perso().encode()
    bad_pin = good[:48] + b"12\xff\xff\xff\xff\xff\xff" + good[56:]
    bad_limits = good[:36] + (10).to_bytes(4, "big") + (20).to_bytes(4, "big") + good[44:]  # max payment > max
    bad_holder = good[:96] + b"\x05" + good[97:]
    for data, sw in ((bad_pin, 0x6A80), (bad_limits, 0x6A80), (bad_holder, 0x6A80), (good[:97], 0x6700)):
        with pytest.raises(StatusError) as caught:
            fresh.secure(0x30, data=data)
        assert caught.value.sw == sw
    assert fresh.status().state == WalletLifeCycle.INSTALLED
    fresh.personalise(_perso())  # the same session still works; the transport keys were kept
    assert fresh.status().state == WalletLifeCycle.PERSONALISED


@pytest.mark.isolated
def test_issuer_limits_and_credit(fresh: WalletClient, transport_keys: IssuerKeys) -> None:
    fresh.provision(transport_keys, _perso())
    fresh.open_issuer_session(ISSUER)
    fresh.credit(LIMITS.max_balance)
    for amount, sw in ((1, 0x6985), (0, 0x6A80)):  # above the maximum balance; nothing to credit
        with pytest.raises(StatusError) as caught:
            fresh.credit(amount)
        assert caught.value.sw == sw
    with pytest.raises(StatusError) as caught:
        fresh.set_limits(Limits(max_balance=10, max_payment=20, step_up=5))
    assert caught.value.sw == 0x6A80
    fresh.set_limits(Limits(max_balance=100_000, max_payment=5, step_up=5))
    fresh.credit(1)
    fresh.verify_pin(PIN)
    assert status_word(fresh, WalletClient.pay_command(6, MERCHANT, ITEM, 1)) == 0x6A80  # the new per-payment limit
    fresh.pay(5, MERCHANT, ITEM)
    assert fresh.get_balance() == LIMITS.max_balance + 1 - 5
    log = fresh.read_log()
    assert [r.type.name for r in log] == ["PAYMENT", "CREDIT", "CREDIT"]


@pytest.mark.parametrize("command, sw", [
    (CommandAPDU(0x80, 0x7E, 0, 0), 0x6D00),
    (CommandAPDU(0x00, 0x7E, 0, 0), 0x6D00),
    (CommandAPDU(0x90, 0xF2, 0, 0, le=8), 0x6E00),
    (CommandAPDU(0x00, 0xF2, 0, 0, le=8), 0x6E00),
    (CommandAPDU(0x80, 0xF2, 1, 0, le=8), 0x6A86),
    (CommandAPDU(0x80, 0xF2, 0, 0, b"\x00"), 0x6700),
    (CommandAPDU(0x80, 0x50, 0, 0, bytes(7), le=256), 0x6700),
    (CommandAPDU(0x80, 0x50, 0x02, 0, bytes(8), le=256), 0x6A88),  # no such key version
    (CommandAPDU(0x80, 0x50, 0, 1, bytes(8), le=256), 0x6A86),
])
def test_class_instruction_and_parameter_checks(fresh: WalletClient, command: CommandAPDU, sw: int) -> None:
    assert status_word(fresh, command) == sw


@pytest.mark.sim_only
def test_install_needs_the_transport_keys(project) -> None:
    from cardsuite.sim.bridge import AppletInstall
    from cardsuite.sim.inprocess import SimulatorTransport

    card = SimulatorTransport(project, applets=[AppletInstall(WALLET_AID, "cardsuite.wallet.WalletApplet", b"")])
    with pytest.raises(TransportError, match="WalletApplet"):
        card.connect()
