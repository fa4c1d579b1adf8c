"""The bridge's transactions and tearing, on its JournalApplet (host/simbridge/test-applets; README "How
transactions and tearing work"): an abort replays the undo log backwards, Util's atomic helpers take part in an
open transaction, a torn arrayCopyNonAtomic leaves its first half, a transaction left open at return is aborted."""

from __future__ import annotations

import pytest
from support.bridgecard import BridgeCard, Journal

# JournalApplet's instructions (its class comment)
COMMIT_ALL = 0x10
COMMIT_WITH_UTIL = 0x11
ABORT_ALL = 0x12
THROW_ISO = 0x13
THROW_NULL = 0x14
RETURN_OPEN = 0x15
WRITE_OUTSIDE = 0x16
ABORT_TWICE_WRITTEN = 0x17
ABORT_WITH_UTIL = 0x18
COPY_NON_ATOMIC = 0x21
FILL_NON_ATOMIC_IN_ABORTED = 0x22
WRITE_RAM = 0x30


def test_abort_restores_the_oldest_value_of_a_cell_written_twice(bridge_card: BridgeCard) -> None:
    """Every cell is written twice (to 5, then 6): replayed oldest-last, the undo log ends on the value before
    the transaction; replayed in write order it would leave the 5s."""
    assert bridge_card.send(ABORT_TWICE_WRITTEN, 0x05) == 0x9000
    assert bridge_card.read().persistent() == Journal.all(0x01)
    assert bridge_card.send(ABORT_ALL, 0x05) == 0x9000
    assert bridge_card.read().persistent() == Journal.all(0x01)


def test_a_tear_anywhere_in_a_twice_written_transaction_leaves_the_old_state(bridge_card: BridgeCard) -> None:
    writes = bridge_card.writes(COMMIT_ALL, 0x02)  # the same cells as ABORT_TWICE_WRITTEN's first pass
    assert bridge_card.read().persistent() == Journal.all(0x02)
    assert writes >= 16 + 8 + 3
    for n in range(1, 2 * writes + 1):  # through the first and the second pass over the cells
        bridge_card.torn_send(n, ABORT_TWICE_WRITTEN, 0x05)
        assert bridge_card.read().persistent() == Journal.all(0x02), f"torn at write {n}"


def test_atomic_helpers_inside_a_transaction_are_undone_by_its_abort(bridge_card: BridgeCard) -> None:
    """Util.arrayCopy and setShort are atomic on their own; inside a transaction they join it (JCSystem, Util
    API): the abort takes back what they wrote along with the field store."""
    assert bridge_card.send(ABORT_WITH_UTIL, 0x07) == 0x9000
    assert bridge_card.read().persistent() == Journal.all(0x01)


def test_a_tear_inside_a_transaction_of_atomic_helpers_rolls_all_back(bridge_card: BridgeCard) -> None:
    writes = bridge_card.writes(COMMIT_WITH_UTIL, 0x03)
    assert bridge_card.read().persistent() == Journal.all(0x03)
    for n in range(1, writes + 1):
        bridge_card.torn_send(n, COMMIT_WITH_UTIL, 0x04)
        assert bridge_card.read().persistent() == Journal.all(0x03), f"torn at write {n}"
    assert bridge_card.send(COMMIT_WITH_UTIL, 0x04) == 0x9000
    assert bridge_card.read().persistent() == Journal.all(0x04)


def test_a_torn_array_copy_non_atomic_leaves_its_first_half(bridge_card: BridgeCard) -> None:
    """One write (the call) and a tear there: the bridge models the worst a card may do to a non-atomic copy,
    part of it done. Nothing rolls it back at power-up, as no transaction covered it."""
    assert bridge_card.writes(COPY_NON_ATOMIC, data=bytes(16)) == 1
    bridge_card.torn_send(1, COPY_NON_ATOMIC, data=bytes([0x77]) * 16)
    journal = bridge_card.read()
    assert journal.bytes == bytes([0x77]) * 8 + bytes(8)
    assert journal.persistent()[16:] == Journal.all(0x01)[16:]


def test_non_atomic_writes_are_not_journaled_even_in_a_transaction(bridge_card: BridgeCard) -> None:
    assert bridge_card.send(FILL_NON_ATOMIC_IN_ABORTED, 0x09) == 0x9000
    journal = bridge_card.read()
    assert journal.bytes == bytes([0x09]) * 16  # arrayFillNonAtomic stays
    assert journal.persistent()[16:] == Journal.all(0x01)[16:]  # the journaled stores were undone


@pytest.mark.parametrize("ins, sw", [(RETURN_OPEN, 0x9000), (THROW_ISO, 0x6A80), (THROW_NULL, 0x6F00)])
def test_a_transaction_left_open_is_aborted(bridge_card: BridgeCard, ins: int, sw: int) -> None:
    """Java Card RE 7.6.2: a transaction still open when process() returns, or throws, is aborted."""
    assert bridge_card.send(ins, 0x05) == sw
    assert bridge_card.read().persistent() == Journal.all(0x01)
    # nothing stays open either: the next command's own transaction begins and commits
    assert bridge_card.send(COMMIT_ALL, 0x06) == 0x9000
    assert bridge_card.read().persistent() == Journal.all(0x06)


def test_writes_outside_a_transaction_before_a_tear_stay(bridge_card: BridgeCard) -> None:
    assert bridge_card.writes(WRITE_OUTSIDE, 0x01) == 16
    bridge_card.torn_send(6, WRITE_OUTSIDE, 0x08)
    assert bridge_card.read().bytes == bytes([0x08]) * 5 + bytes([0x01]) * 11


def test_power_up_clears_transient_memory(bridge_card: BridgeCard) -> None:
    assert bridge_card.send(WRITE_RAM, 0x0A) == 0x9000
    assert bridge_card.read().raw[38:] == bytes([0x0A]) * 16
    bridge_card.card.reset()
    bridge_card.select()
    assert bridge_card.read().raw[38:] == bytes(16)
