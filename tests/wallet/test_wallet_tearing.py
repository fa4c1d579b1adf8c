"""Power lost at every persistent write of PAY, CREDIT, VERIFY and PERSONALISE leaves balance, counter,
log and try counters either fully updated or untouched; random APDUs never move the balance and never
get 6F00. In-process simulator only (the plugin's `tear_at_every_write`, SimulatorTransport.tear_after_writes)."""

from __future__ import annotations

import os

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.errors import CardTornError
from cardsuite.testing.tearing import TearAtEveryWrite
from cardsuite.wallet.card import (
    Limits,
    Personalisation,
    WalletClient,
    WalletLifeCycle,
    manifest_transport_keys,
    pin_block,
)
from cardsuite.wallet.sm import IssuerKeys, IssuerSession
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import NUMBER_SECRET, PIN, PUK

pytestmark = [pytest.mark.sim_only]

LIMITS = Limits(max_balance=1_000_000, max_payment=100_000, step_up=100_000)
ISSUER = IssuerKeys(bytes(range(16)), bytes(range(16, 32)))
MERCHANT = b"TEAR0001"


def _perso() -> Personalisation:
    return Personalisation.for_card("4111111111111111", secret=NUMBER_SECRET,
                                    holder=b"Tear", limits=LIMITS, pin=PIN, puk=PUK, keys=ISSUER)


def _issue(card, project, credit: int = 100_000) -> WalletClient:
    client = WalletClient(card)
    client.provision(manifest_transport_keys(project.manifest), _perso())
    client.open_issuer_session(ISSUER)
    client.credit(credit)
    return client


def _snapshot(client: WalletClient) -> tuple:
    """Everything a tear could damage. Reading the balance needs the PIN, whose tries are checked first."""
    client.select()
    status = client.status()
    client.verify_pin(PIN)
    return status.pin_tries, status.counter, client.get_balance(), client.read_log()


def _power_cycle(client: WalletClient) -> None:
    client.transport.reset()
    client.select()


def _tear_every_write(tear: TearAtEveryWrite, client: WalletClient, prepare, command_of,
                      expect_writes: int | None = None) -> tuple:
    """Runs the command once untorn to count its writes, then once torn at each of them. Returns the
    snapshots before and after the untorn run; every torn run must end in one of the two."""
    card = client.transport
    before = _snapshot(client)
    prepare()
    _, writes = tear.count_writes(lambda: card.send(command_of()))
    after = _snapshot(client)
    assert after != before
    if expect_writes is not None:
        assert writes == expect_writes
    outcomes = set()
    starts: list[tuple] = []

    def snapshot_and_prepare() -> None:
        starts.append(_snapshot(client))
        prepare()

    def torn(point: int) -> None:
        start, end = starts[-1], _snapshot(client)
        assert end in (start, _advanced(start, before, after)), f"torn at write {point} of {writes}"
        outcomes.add(end == start)

    tear(lambda: card.transmit(command_of()), prepare=snapshot_and_prepare, recover=lambda: _power_cycle(client),
         after_tear=torn, writes=writes)
    return writes, outcomes


def _advanced(start: tuple, before: tuple, after: tuple) -> tuple:
    """What `start` becomes if the command completes: the same change as before → after."""
    tries, counter, balance, log = start
    return (tries, counter + after[1] - before[1], balance + after[2] - before[2], (after[3][:1] + log)[:10])


@pytest.mark.isolated
def test_pay_is_all_or_nothing_at_every_tear_point(card, project, tear_at_every_write: TearAtEveryWrite) -> None:
    client = _issue(card, project)
    writes, outcomes = _tear_every_write(tear_at_every_write, client, lambda: client.verify_pin(PIN),
                                         lambda: WalletClient.pay_command(250, MERCHANT, b"item", 7))
    assert writes > 3
    assert outcomes == {True}  # every write is inside the transaction: a tear always rolls back


@pytest.mark.isolated
def test_credit_is_all_or_nothing_at_every_tear_point(card, project, tear_at_every_write: TearAtEveryWrite) -> None:
    client = _issue(card, project)

    def command() -> CommandAPDU:
        return client.session.wrap(0x84, 0x52, 0, 0, (1_000).to_bytes(4, "big") + bytes(16))

    writes, outcomes = _tear_every_write(tear_at_every_write, client, lambda: client.open_issuer_session(ISSUER),
                                         command)
    assert writes > 3
    assert outcomes == {True}


@pytest.mark.isolated
def test_wrong_pin_is_counted_even_when_torn(card, project) -> None:
    client = _issue(card, project)
    card.send(CommandAPDU(0x00, 0x20, 0, 0x81, pin_block("0000")), expected=(0x63C2,))
    assert card.persistent_write_count() == 1
    client.verify_pin(PIN)
    card.tear_after_writes(1)  # before the decrement: nothing happened, nothing was compared
    with pytest.raises(CardTornError):
        card.transmit(CommandAPDU(0x00, 0x20, 0, 0x81, pin_block("0000")))
    _power_cycle(client)
    assert client.status().pin_tries == 3


@pytest.mark.isolated
def test_right_pin_torn_after_the_decrement_costs_a_try(card, project) -> None:
    client = _issue(card, project)
    card.tear_after_writes(2)
    with pytest.raises(CardTornError):
        client.verify_pin(PIN)
    _power_cycle(client)
    assert client.status().pin_tries == 2  # spent before the comparison, never given back by the tear
    client.verify_pin(PIN)
    assert client.status().pin_tries == 3


@pytest.mark.isolated
def test_personalise_torn_leaves_an_installed_card_with_its_transport_keys(
        card, project, tear_at_every_write: TearAtEveryWrite) -> None:
    transport_keys = manifest_transport_keys(project.manifest)
    client = WalletClient(card)

    def prepare() -> None:
        client.select()
        client.open_issuer_session(transport_keys)

    def torn(point: int) -> None:
        status = client.status()
        assert (status.state, status.key_version) == (WalletLifeCycle.INSTALLED, 0xFF), f"torn at write {point}"

    done = tear_at_every_write(lambda: client.personalise(_perso()), prepare=prepare,
                               recover=lambda: _power_cycle(client), after_tear=torn)
    assert done.torn >= 5
    assert client.status().state == WalletLifeCycle.PERSONALISED


# ---------------------------------------------------------------- random APDUs

_INS = [0x20, 0x24, 0x2C, 0xB2, 0x48, 0x50, 0x54, 0x5C, 0x82, 0xF2, 0x30, 0x34, 0x52, 0xF0, 0xA4, 0xC0]
_apdus = st.builds(
    CommandAPDU,
    cla=st.sampled_from([0x00, 0x80, 0x84, 0x0C, 0x90]),
    ins=st.one_of(st.sampled_from(_INS), st.integers(0, 255)),
    p1=st.one_of(st.sampled_from([0, 1, 4, 8, 0x10, 0xFF]), st.integers(0, 255)),
    p2=st.one_of(st.sampled_from([0, 0x04, 0x0C, 0x81]), st.integers(0, 255)),
    data=st.binary(max_size=64),
    le=st.one_of(st.none(), st.integers(1, 256)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=st.lists(_apdus, max_size=8))
def test_random_apdus_never_move_the_balance(project, commands: list[CommandAPDU]) -> None:
    """At most 8 commands: even if every one were a wrong PUK the PUK (10 tries) survives to check."""
    from cardsuite.sim.inprocess import SimulatorTransport

    card = SimulatorTransport(project)
    card.connect()
    client = _issue(card, project, credit=5_000)
    client.select()
    counter = client.status().counter
    for command in commands:
        assert card.exchange(command).sw != 0x6F00, command
    client.select()
    status = client.status()
    if status.pin_tries == 0:
        client.unblock_pin(PUK)
    client.verify_pin(PIN)
    assert client.get_balance() == 5_000
    assert status.counter == counter
    assert status.state == WalletLifeCycle.ACTIVE


@pytest.mark.isolated
def test_a_torn_right_authentication_still_spends_its_try(card, project) -> None:
    """The issuer-key try is spent in a committed write before the cryptogram is compared: power cut
    after the comparison but before the tries are given back leaves one try spent."""
    wallet = WalletClient(card)
    wallet.select()
    keys = manifest_transport_keys(project.manifest)
    r1 = os.urandom(8)
    session = IssuerSession.start(keys, r1, wallet.initialize_update(r1, keys.version))
    card.tear_after_writes(2)  # write 1 spends the try, write 2 would give it back
    with pytest.raises(CardTornError):
        wallet.external_authenticate(session.host_cryptogram())
    card.reset()
    wallet.select()
    for _ in range(9):  # nine tries were left, not ten
        wallet.initialize_update(os.urandom(8))
        assert card.transmit(CommandAPDU(0x80, 0x82, 0, 0, os.urandom(8))).sw == 0x6300
    assert card.transmit(CommandAPDU(0x80, 0x50, 0, 0, os.urandom(8), le=256)).sw == 0x6983
