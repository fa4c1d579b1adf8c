"""`pytest -n` (pytest-xdist) with the plugin: each worker its own in-process cards, and the tests that may touch
a vpcd slot (the two slots are shared by the whole machine) one module at a time across the workers."""

from __future__ import annotations

import pytest

pytest.importorskip("xdist")

from test_plugin import run  # noqa: E402 - after the skip: the same child-process runner

WORKERS = """
import os
import time
import pytest
from cardsuite.apdu import CommandAPDU
from cardsuite.sim.inprocess import SimulatorTransport

ECHO = bytes.fromhex("{echo}")


def _note(tmp, what):
    with open(os.path.join(tmp, os.environ["PYTEST_XDIST_WORKER"] + "-" + what), "w") as out:
        out.write(what + chr(10))


@pytest.fixture
def vpcd_slot_stand_in():  # a fixture named like the vpcd ones: the plugin groups its users
    return None


@pytest.mark.parametrize("i", range(6))
def test_uses_vpcd(vpcd_slot_stand_in, i):
    started = time.monotonic()
    time.sleep(0.3)
    _note("{tmp}", "vpcd-%f-%f" % (started, time.monotonic()))


@pytest.mark.parametrize("i", range(6))
def test_in_process_card(card, i):
    card.select(ECHO)
    assert card.transmit(CommandAPDU(0x80, 0x01, 0, 0, bytes([i]), le=1)).data == bytes([i])
    assert isinstance(card, SimulatorTransport)
    _note("{tmp}", "card-%d" % id(card))
"""


def test_vpcd_tests_share_one_worker_and_each_worker_has_its_own_cards(pytester: pytest.Pytester) -> None:
    from support import ECHO_AID

    notes = pytester.mkdir("notes")
    pytester.makepyfile(test_workers=WORKERS.format(echo=ECHO_AID.hex(), tmp=str(notes)))
    result = run(pytester, "-n", "2")
    result.assert_outcomes(passed=12)
    files = sorted(p.name for p in notes.iterdir())
    spans = sorted(tuple(map(float, name.split("-")[2:4])) for name in files if "-vpcd-" in name)
    assert len(spans) == 6
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end  # one vpcd test at a time, whichever worker ran it
    card_workers = {name.split("-", 1)[0] for name in files if "-card-" in name}
    assert card_workers <= {"gw0", "gw1"} and card_workers  # in-process tests ran with cards of the worker's own
