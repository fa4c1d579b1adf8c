"""PIN and PUK ([P002]): VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER; 3 PIN tries and 10 PUK
tries reported as 63Cx, 6983 once blocked, and the try counter spent before the comparison."""

from __future__ import annotations

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.errors import CardTornError
from cardsuite.wallet.card import Limits, Personalisation, WalletClient, manifest_transport_keys, pin_block
from cardsuite.wallet.sm import IssuerKeys
from support import NUMBER_SECRET, PIN, PUK, status_word

LIMITS = Limits(max_balance=100_000, max_payment=10_000, step_up=5_000)


def _issue(transport, project) -> WalletClient:
    perso = Personalisation.for_card("5500000000000004", secret=NUMBER_SECRET,
                                     holder=b"PIN test", limits=LIMITS, pin=PIN, puk=PUK, keys=IssuerKeys.generate())
    client = WalletClient(transport)
    client.provision(manifest_transport_keys(project.manifest), perso)
    return client


@pytest.fixture(scope="module")
def issued(module_card, project) -> None:
    _issue(module_card, project)


@pytest.fixture
def wallet(card, issued) -> WalletClient:
    client = WalletClient(card)
    client.select()
    yield client
    # state restored for the next test: the module's PIN, all tries
    client.select()
    assert client.status().pin_tries == 3


@pytest.fixture
def fresh(card, project) -> WalletClient:
    """For tests that block or tear: a card of their own (mark them isolated)."""
    return _issue(card, project)


def _verify(wallet: WalletClient, pin: str) -> int:
    return status_word(wallet, CommandAPDU(0x00, 0x20, 0x00, 0x81, pin_block(pin)))


@pytest.mark.e2e
def test_verify_right_and_wrong(wallet: WalletClient) -> None:
    assert wallet.pin_tries_left() == 3  # VERIFY without data reports
    assert _verify(wallet, "0000") == 0x63C2
    assert wallet.pin_tries_left() == 2
    assert _verify(wallet, PIN) == 0x9000
    assert wallet.pin_tries_left() is None  # verified
    assert wallet.status().pin_tries == 3  # a match restores the tries


def test_wrong_verify_cancels_an_earlier_verification(wallet: WalletClient) -> None:
    wallet.verify_pin(PIN)
    assert wallet.get_balance() >= 0
    assert _verify(wallet, "9999") == 0x63C2
    assert status_word(wallet, CommandAPDU(0x80, 0x5C, 0, 0, le=4)) == 0x6982
    wallet.verify_pin(PIN)


def test_verification_ends_with_the_selection(wallet: WalletClient) -> None:
    wallet.verify_pin(PIN)
    wallet.select()
    assert status_word(wallet, CommandAPDU(0x80, 0x5C, 0, 0, le=4)) == 0x6982


@pytest.mark.parametrize("command", [
    CommandAPDU(0x80, 0x5C, 1, 0, le=4),  # GET BALANCE, bad P1
    CommandAPDU(0x80, 0x5C, 0, 0, b"\x00", le=4),  # GET BALANCE with data
    CommandAPDU(0x80, 0x54, 0, 0, bytes(3), le=256),  # PAY, too short
    CommandAPDU(0x00, 0xB2, 1, 0x0D, le=29),  # READ RECORD, bad P2
    CommandAPDU(0x80, 0x5A, 9, 0, le=256),  # ECASH STATUS, bad slot
], ids=["balance-p1", "balance-data", "pay-length", "record-p2", "ecash-status-p1"])
def test_the_pin_is_checked_before_the_parameters(wallet: WalletClient, command: CommandAPDU) -> None:
    """The command policy (WalletApplet.POLICY) checks class, state and PIN before a command parses anything:
    without the PIN a malformed command learns nothing more than a well-formed one."""
    wallet.select()
    assert status_word(wallet, command) == 0x6982


@pytest.mark.parametrize("command, sw", [
    (CommandAPDU(0x00, 0x20, 0x00, 0x82, pin_block(PIN)), 0x6A86),  # unknown reference
    (CommandAPDU(0x00, 0x20, 0x01, 0x81, pin_block(PIN)), 0x6A86),
    (CommandAPDU(0x00, 0x20, 0x00, 0x81, PIN.encode()), 0x6700),  # not a PIN block
    (CommandAPDU(0x00, 0x24, 0x00, 0x81, pin_block(PIN)), 0x6700),  # old PIN only
    (CommandAPDU(0x00, 0x24, 0x00, 0x81, pin_block(PIN) + b"12ab\xff\xff\xff\xff"), 0x6A80),  # bad new PIN
    (CommandAPDU(0x00, 0x24, 0x00, 0x81, pin_block(PIN) + b"123\xff\xff\xff\xff\xff"), 0x6A80),  # 3 digits
    (CommandAPDU(0x00, 0x2C, 0x02, 0x81, PUK.encode()), 0x6A86),
    (CommandAPDU(0x00, 0x2C, 0x00, 0x81, PUK.encode()), 0x6700),  # P1 00 needs a new PIN too
    (CommandAPDU(0x80, 0x20, 0x00, 0x81, pin_block(PIN)), 0x6E00),  # ISO command in a proprietary class
])
def test_malformed_pin_commands_cost_no_try(wallet: WalletClient, command: CommandAPDU, sw: int) -> None:
    assert status_word(wallet, command) == sw
    assert wallet.status().pin_tries == 3
    assert wallet.status().puk_tries == 10


@pytest.mark.e2e
def test_change_pin(wallet: WalletClient) -> None:
    assert status_word(wallet, CommandAPDU(0x00, 0x24, 0, 0x81, pin_block("0000") + pin_block("24682468"))) == 0x63C2
    wallet.change_pin(PIN, "24682468")
    assert wallet.get_balance() >= 0  # the change verified the holder
    wallet.select()
    assert _verify(wallet, PIN) == 0x63C2
    wallet.verify_pin("24682468")
    wallet.change_pin("24682468", PIN)


@pytest.mark.isolated
def test_three_wrong_pins_block_and_the_puk_unblocks(fresh: WalletClient) -> None:
    assert [_verify(fresh, "0000") for _ in range(3)] == [0x63C2, 0x63C1, 0x63C0]
    assert _verify(fresh, PIN) == 0x6983  # blocked: even the right PIN is refused
    assert fresh.pin_tries_left() == 0
    assert status_word(fresh, CommandAPDU(0x00, 0x24, 0, 0x81, pin_block(PIN) + pin_block("1111"))) == 0x6983
    # a wrong PUK costs a PUK try and leaves the PIN blocked
    assert status_word(fresh, CommandAPDU(0x00, 0x2C, 0, 0x81, pin_block("11111111") + pin_block("4444"))) == 0x63C9
    assert fresh.status().puk_tries == 9
    fresh.unblock_pin(PUK, "4444")
    status = fresh.status()
    assert (status.pin_tries, status.puk_tries) == (3, 10)
    assert status_word(fresh, CommandAPDU(0x80, 0x5C, 0, 0, le=4)) == 0x6982  # RESET RETRY COUNTER does not verify
    assert _verify(fresh, PIN) == 0x63C2  # the old PIN is gone
    fresh.verify_pin("4444")


@pytest.mark.isolated
def test_puk_without_new_pin_keeps_the_pin(fresh: WalletClient) -> None:
    for _ in range(3):
        _verify(fresh, "0000")
    fresh.unblock_pin(PUK)
    fresh.verify_pin(PIN)


@pytest.mark.isolated
def test_ten_wrong_puks_block_the_puk(fresh: WalletClient) -> None:
    sws = [status_word(fresh, CommandAPDU(0x00, 0x2C, 1, 0x81, b"00000000")) for _ in range(10)]
    assert sws == [0x63C0 | n for n in range(9, -1, -1)]
    assert status_word(fresh, CommandAPDU(0x00, 0x2C, 1, 0x81, PUK.encode())) == 0x6983
    fresh.verify_pin(PIN)  # the PIN itself still works


@pytest.mark.isolated
@pytest.mark.sim_only
def test_try_counter_is_spent_before_the_comparison(fresh: WalletClient) -> None:
    """Power cut right after the first write of a VERIFY with the *right* PIN: the try is gone, so an
    attacker who cuts the power when a comparison fails gains nothing."""
    card = fresh.transport
    fresh.verify_pin(PIN)
    writes = card.persistent_write_count()
    assert writes == 2  # decrement, restore
    card.tear_after_writes(2)  # the decrement happens, the restore does not
    with pytest.raises(CardTornError):
        fresh.verify_pin(PIN)
    card.reset()
    fresh.select()
    assert fresh.status().pin_tries == 2
    fresh.verify_pin(PIN)
    assert fresh.status().pin_tries == 3


def test_wrong_pin_makes_exactly_one_write(wallet: WalletClient, request) -> None:
    if request.config.getoption("--cardsuite-card") != "sim":
        pytest.skip("counts persistent writes on the in-process simulator")
    assert _verify(wallet, "0000") == 0x63C2
    assert wallet.transport.persistent_write_count() == 1
    wallet.verify_pin(PIN)
