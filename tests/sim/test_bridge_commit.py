"""Commit capacity (JC API JCSystem.getMaxCommitCapacity/getUnusedCommitCapacity, TransactionException): a
simulated card has a commit buffer, 5,120 bytes unless configured (an NXP JCOP 4's), and a transaction that
outgrows it gets BUFFER_FULL. Each journaled write costs a 6-byte entry plus the bytes it overwrites (see the
bridge's WriteJournal); JournalApplet's INS 61 writes n bytes in Util.arrayCopy chunks of 255."""

from __future__ import annotations

import math

import pytest
from support.bridgecard import BridgeCard

CAPACITY, FILL, PEEK = 0x60, 0x61, 0x62
ENTRY = 6
CHUNK = 255
DEFAULT = 5120


def fill_cost(n: int) -> int:
    return n + ENTRY * math.ceil(n / CHUNK)


def capacities(card: BridgeCard) -> list[int]:
    data, sw = card.transmit(bytes([0x80, CAPACITY, 0, 0, 0]))
    assert sw == 0x9000
    return [int.from_bytes(data[i:i + 2], "big") for i in range(0, 8, 2)]


def fill(card: BridgeCard, n: int) -> int:
    return card.transmit(bytes([0x80, FILL, n >> 8, n & 0xFF]))[1]


def peek(card: BridgeCard, n: int) -> bytes:
    data, sw = card.transmit(bytes([0x80, PEEK, n >> 8, n & 0xFF, 0]))
    assert sw == 0x9000
    return data


def largest_fill(capacity: int) -> int:
    return max(n for n in range(1, capacity) if fill_cost(n) <= capacity)


def test_the_default_commit_buffer_and_what_a_write_takes(bridge_card: BridgeCard) -> None:
    assert int(bridge_card.card.commitCapacity()) == DEFAULT
    # max, unused outside a transaction, inside before and after one 2-byte Util.setShort
    assert capacities(bridge_card) == [DEFAULT, DEFAULT, DEFAULT, DEFAULT - ENTRY - 2]


@pytest.mark.parametrize("capacity", [DEFAULT, 1000, 300])
def test_a_transaction_that_outgrows_the_buffer_gets_buffer_full_and_is_rolled_back(
        bridge_card: BridgeCard, capacity: int) -> None:
    bridge_card.card.setCommitCapacity(capacity)
    assert capacities(bridge_card)[:2] == [capacity, capacity]
    n = largest_fill(capacity)
    assert fill(bridge_card, n) == 0x9000  # fits exactly, or within a header of it
    assert int(bridge_card.card.commitBytes()) == fill_cost(n)
    before = peek(bridge_card, n + 1)
    assert fill(bridge_card, n + 1) == 0x6A84  # BUFFER_FULL, caught by the applet
    assert peek(bridge_card, n + 1) == before  # the runtime aborted the transaction it left open
    assert capacities(bridge_card)[1] == capacity  # nothing held after the abort


def test_a_capacity_outside_the_short_range_is_refused(bridge_card: BridgeCard) -> None:
    import jpype

    for bad in (0, 6, 32768):
        with pytest.raises(jpype.JException, match="commit capacity"):
            bridge_card.card.setCommitCapacity(bad)
