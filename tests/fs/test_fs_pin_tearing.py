"""The ISO applet's PIN counter (ISO 7816-4 7.5.6) under power loss: the try is spent in a committed write
before the comparison, so tearing VERIFY at any of its writes never gives an attacker an extra try, and a
torn right PIN is neither verified nor refunded. In-process simulator only (the plugin's `tear_at_every_write`)."""

from __future__ import annotations

import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.testing.tearing import TearAtEveryWrite
from support.fsmodel import PIN, open_iso

pytestmark = [pytest.mark.sim_only, pytest.mark.isolated]

TRIES = 3
WRONG = b"0000"


def _verify(pin: bytes) -> CommandAPDU:
    return CommandAPDU(0x00, 0x20, 0x00, 0x01, pin)


def _tries(card) -> int:
    """Tries left as VERIFY without data reports them after a reset (63Cx; 6983 is 0)."""
    card.reset()
    fs = open_iso(card)
    sw = fs.pin_status()
    assert sw == 0x6983 or sw & 0xFFF0 == 0x63C0, f"{sw:04X}: not verified after a reset"
    return 0 if sw == 0x6983 else sw & 0x0F


def _writes(card, pin: bytes) -> int:
    open_iso(card)
    card.transmit(_verify(pin))
    return card.persistent_write_count()


def test_every_verify_write_is_seen_by_the_tearing_harness(card) -> None:
    assert _writes(card, WRONG) == 1  # the decrement
    assert _writes(card, PIN) == 2  # the decrement, then the counter restored after the match
    assert _tries(card) == TRIES


def test_the_try_that_blocks_answers_63c0_then_6983(card) -> None:
    fs = open_iso(card)
    assert [fs.verify(WRONG, expected=(0x63C2, 0x63C1, 0x63C0)).sw for _ in range(TRIES)] == [0x63C2, 0x63C1,
                                                                                               0x63C0]
    assert fs.verify(WRONG, expected=(0x6983,)).sw == 0x6983
    assert fs.verify(PIN, expected=(0x6983,)).sw == 0x6983  # blocked: not even the right PIN
    assert fs.pin_status() == 0x6983
    assert card.persistent_write_count() == 0  # a blocked PIN is not even compared


@pytest.mark.parametrize("pin", [WRONG, PIN], ids=["wrong", "right"])
def test_tearing_verify_at_every_write_never_gives_a_try(card, tear_at_every_write: TearAtEveryWrite,
                                                         pin: bytes) -> None:
    writes = _writes(card, pin)
    assert writes == (1 if pin == WRONG else 2)
    befores: list[int] = []

    def prepare() -> None:
        open_iso(card).verify(PIN)  # a full counter and a known state
        befores.append(_tries(card))
        open_iso(card)

    def torn(point: int) -> None:
        before, after = befores[-1], _tries(card)
        # torn at the decrement: nothing was compared; torn later: the try is spent, never refunded
        assert after == (before if point == 1 else before - 1), f"torn at write {point} of {writes}"

    done = tear_at_every_write(lambda: card.transmit(_verify(pin)), prepare=prepare, after_tear=torn, writes=writes)
    assert len(befores) == done.torn == writes
