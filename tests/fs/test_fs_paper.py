"""The paper's three example applets, one conformance suite run against both applet sets: paper_*
(built on the cardsuite.isofs library) and baseline_* (their own file code). Behaviour as the
applets' class comments document it, including the paper's Fig. 8 trace (append with P1 01 then 02)."""

from __future__ import annotations

import pytest
from cardsuite.apdu import CommandAPDU
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import BASELINE_AIDS, PAPER_AIDS
from support.fsmodel import xchg

pytestmark = pytest.mark.e2e

APPLETS = {"paper": PAPER_AIDS, "baseline": BASELINE_AIDS}
WRITE, READ, APPEND = 0x23, 0x24, 0x25
SIZE = 32


@pytest.fixture(params=sorted(APPLETS))
def variant(request) -> str:
    return request.param


def select(card, variant: str, kind: str) -> None:
    _, sw = xchg(card, 0x00, 0xA4, 0x04, 0x00, APPLETS[variant][kind])
    assert sw == 0x9000


def rec(i: int) -> bytes:
    return bytes([i]) * SIZE


def read(card, p1: int, le: int | None = SIZE) -> tuple[bytes, int]:
    return xchg(card, 0x00, READ, p1, 0x00, le=le)


@pytest.mark.parametrize("kind", ["transparent", "record", "cyclic"])
def test_select_answers_9000_without_data(card, variant: str, kind: str) -> None:
    response = card.exchange(CommandAPDU(0x00, 0xA4, 0x04, 0x00, APPLETS[variant][kind], le=256))
    assert (response.data, response.sw) == (b"", 0x9000)


@pytest.mark.parametrize("kind", ["transparent", "record", "cyclic"])
def test_header_errors_in_the_documented_order(card, variant: str, kind: str) -> None:
    select(card, variant, kind)
    assert xchg(card, 0x80, READ, 0x01, 0x00, le=SIZE)[1] == 0x6E00  # CLA before INS
    assert xchg(card, 0x80, 0x99, 0x01, 0x01)[1] == 0x6E00
    assert xchg(card, 0x00, 0x22, 0x00, 0x00)[1] == 0x6D00
    assert xchg(card, 0x00, 0x26, 0x00, 0x01)[1] == 0x6D00  # INS before P2
    assert xchg(card, 0x00, READ, 0x00, 0x01, le=SIZE)[1] == 0x6A86
    assert xchg(card, 0x00, WRITE, 0x01, 0x80, rec(1))[1] == 0x6A86


def test_transparent_write_then_read(card, variant: str) -> None:
    select(card, variant, "transparent")
    data = bytes(range(SIZE))
    assert xchg(card, 0x00, WRITE, 0x00, 0x00, data) == (b"", 0x9000)
    assert read(card, 0x00) == (data, 0x9000)
    assert xchg(card, 0x00, READ, 0x00, 0x00, b"ignored", le=SIZE) == (data, 0x9000)  # data of 24 ignored


def test_transparent_errors(card, variant: str) -> None:
    select(card, variant, "transparent")
    assert xchg(card, 0x00, WRITE, 0x00, 0x00, rec(7)) == (b"", 0x9000)
    assert xchg(card, 0x00, WRITE, 0x01, 0x00, rec(1))[1] == 0x6A86  # P1 not 00
    assert read(card, 0x01)[1] == 0x6A86
    assert xchg(card, 0x00, WRITE, 0x00, 0x00, bytes(31))[1] == 0x6700
    assert xchg(card, 0x00, WRITE, 0x00, 0x00, bytes(33))[1] == 0x6700
    assert xchg(card, 0x00, WRITE, 0x00, 0x00)[1] == 0x6700
    assert xchg(card, 0x00, APPEND, 0x00, 0x00, rec(1))[1] == 0x6D00  # no append on a transparent file
    for le in (None, 256, 16, 31, 33):
        assert read(card, 0x00, le) == (b"", 0x6C20), le
    assert read(card, 0x00) == (rec(7), 0x9000)  # failed writes changed nothing


operations = st.lists(st.tuples(
    st.sampled_from([WRITE, READ, APPEND, APPEND, 0x26]), st.integers(0, 7), st.sampled_from([0, 0, 0, 1]),
    st.sampled_from([0, 31, 32, 32, 32, 33]), st.sampled_from([None, 32, 32, 256, 5])), min_size=1, max_size=30)


@pytest.mark.parametrize("kind", ["transparent", "record", "cyclic"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_paper_and_baseline_answer_alike(card, kind: str, ops) -> None:
    """Differential: the same commands to the library-based and the baseline applet, one after the
    other on the same card; their states stay in step, so every answer must be identical."""
    for n, (ins, p1, p2, size, le) in enumerate(ops):
        data = bytes([n]) * size
        answers = []
        for variant in ("paper", "baseline"):
            select(card, variant, kind)
            answers.append(xchg(card, 0x00, ins, p1, p2, data, le))
        assert answers[0] == answers[1], (ins, p1, p2, size, le)


# Tests with a card of their own come last: over vpcd, opening and closing another simulated
# card resets the module's card in pcscd (see the report), which later tests would trip over.


@pytest.mark.isolated
def test_record_file_life(card, variant: str) -> None:
    select(card, variant, "record")
    assert read(card, 0x01)[1] == 0x6A83  # no record before the first append
    assert xchg(card, 0x00, WRITE, 0x01, 0x00, rec(1))[1] == 0x6A83
    assert read(card, 0x00)[1] == 0x6A83
    assert xchg(card, 0x00, APPEND, 0x00, 0x00, bytes(31))[1] == 0x6700
    assert xchg(card, 0x00, APPEND, 0x00, 0x00)[1] == 0x6700
    for i in range(1, 6):
        assert xchg(card, 0x00, APPEND, 0x00, 0x00, rec(i)) == (b"", 0x9000)
        assert read(card, i) == (rec(i), 0x9000)  # append adds record n+1
    assert xchg(card, 0x00, APPEND, 0x00, 0x00, rec(6))[1] == 0x6A84  # full
    assert xchg(card, 0x00, APPEND, 0x00, 0x00, bytes(3))[1] == 0x6A84  # full is checked before the length
    assert read(card, 0x06)[1] == 0x6A83
    assert xchg(card, 0x00, WRITE, 0x06, 0x00, bytes(3))[1] == 0x6A83  # record before length
    assert xchg(card, 0x00, WRITE, 0x03, 0x00, bytes(3))[1] == 0x6700
    assert xchg(card, 0x00, WRITE, 0x03, 0x00, rec(0x33)) == (b"", 0x9000)
    assert [read(card, i)[0] for i in range(1, 6)] == [rec(1), rec(2), rec(0x33), rec(4), rec(5)]
    for le in (None, 256, 1, 31):
        assert read(card, 0x02, le) == (b"", 0x6C20)


@pytest.mark.isolated
def test_cyclic_file_fig8_trace_then_several_wraparounds(card, variant: str) -> None:
    select(card, variant, "cyclic")
    assert read(card, 0x01)[1] == 0x6A83
    # Fig. 8: two appends, with P1 01 then 02 (P1 is not interpreted); record 1 is the newest.
    first, second = bytes.fromhex("11" * SIZE), bytes.fromhex("22" * SIZE)
    assert xchg(card, 0x00, APPEND, 0x01, 0x00, first) == (b"", 0x9000)
    assert xchg(card, 0x00, APPEND, 0x02, 0x00, second) == (b"", 0x9000)
    assert read(card, 0x01) == (second, 0x9000)
    assert read(card, 0x02) == (first, 0x9000)
    assert read(card, 0x03)[1] == 0x6A83
    # Through three full turns of the five-record ring: always the five newest, newest first.
    history = [first, second]
    for i in range(3, 3 + 15):
        assert xchg(card, 0x00, APPEND, 0x00, 0x00, rec(i)) == (b"", 0x9000)
        history.append(rec(i))
        newest = history[::-1][:5]
        assert [read(card, n)[0] for n in range(1, len(newest) + 1)] == newest
        assert read(card, len(newest) + 1)[1] == 0x6A83
    assert xchg(card, 0x00, WRITE, 0x05, 0x00, rec(0xEE)) == (b"", 0x9000)  # write replaces the oldest
    assert read(card, 0x05) == (rec(0xEE), 0x9000)
    assert xchg(card, 0x00, APPEND, 0x00, 0x00, rec(0xAA)) == (b"", 0x9000)  # and is the next overwritten
    assert read(card, 0x05) == (rec(14), 0x9000)  # the old record 4 (rec(13) was overwritten)
    assert xchg(card, 0x00, APPEND, 0x00, 0x00, bytes(33))[1] == 0x6700
    assert xchg(card, 0x00, WRITE, 0x01, 0x00, bytes(1))[1] == 0x6700
    assert read(card, 0x01, le=None) == (b"", 0x6C20)
