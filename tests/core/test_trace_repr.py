"""A failing test's report shows no PIN, PUK or key (issue 9, item 3): pytest prints reprs of the failing
frame and explains a failed `==` field by field; CommandAPDU and the dataclasses holding secrets mask."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cardsuite
from cardsuite.apdu import CommandAPDU, ResponseAPDU
from cardsuite.gp.scp import KeySet
from cardsuite.project import Project
from cardsuite.sim.bridge import CardManagerConfig
from cardsuite.wallet.card import Limits, Personalisation
from cardsuite.wallet.cardnumber import CardNumber
from cardsuite.wallet.sm import IssuerKeys

PIN, PUK = "8642", "97531864"
K_E, K_A = "1A2B3C4D5E6F70819AABBCCDDEEFF001", "2B3C4D5E6F708192ABBCCDDEEFF00112"
CARD = "9400011234567893"

INNER = f'''
import dataclasses

from cardsuite.apdu import CommandAPDU, ResponseAPDU
from cardsuite.wallet.cardnumber import CardNumber
from cardsuite.gp.scp import KeySet
from cardsuite.wallet.sm import IssuerKeys
from cardsuite.wallet.card import WALLET_AID, Limits, Personalisation, pin_block, puk_block

PIN, PUK, K_E, K_A, CARD = {PIN!r}, {PUK!r}, bytes.fromhex({K_E!r}), bytes.fromhex({K_A!r}), {CARD!r}


def verify(other=False):  # the PIN itself is no argument: pytest prints call arguments, a str is no APDU
    return CommandAPDU(0x00, 0x20, 0x00, 0x81, pin_block("1111" if other else PIN))


def answer(command):
    return ResponseAPDU(b"", 0x63C2)


def test_verify_answers_9000():
    command = verify()
    assert answer(command).sw == 0x9000


def test_two_commands_compare():
    assert verify() == verify(other=True)


def test_lists_of_commands_compare():
    assert [verify(), CommandAPDU(0x00, 0x24, 0x00, 0x81, pin_block(PIN) + pin_block("1111"))] == [verify()]


def test_status_error():
    command = CommandAPDU(0x00, 0x2C, 0x00, 0x81, puk_block(PUK) + pin_block(PIN))
    answer(command).check(command)


def test_personalisations_compare():
    one = Personalisation("940001", bytes(32), b"holder", Limits(9, 9, 9), PIN, PUK, IssuerKeys(K_E, K_A))
    other = dataclasses.replace(one, pin="1111", puk="11111111", keys=IssuerKeys(K_A, K_E))
    assert one == other


def test_key_sets_and_numbers_compare():
    assert (KeySet(K_E, K_A, K_E), CardNumber(CARD)) == (KeySet(K_A, K_E, K_A), CardNumber("9400011234567885"))


def test_a_verify_on_the_card(card):
    card.select(WALLET_AID)
    card.send(verify())
'''


def _forms() -> list[str]:
    """Every way the secrets could show: as text, as hex (with or without spaces), as Python bytes."""
    forms = [PIN, PUK, K_E, K_A, CARD]
    for secret in (PIN.encode() + b"\xff" * 4, PUK.encode(), bytes.fromhex(K_E), bytes.fromhex(K_A)):
        forms += [secret.hex(), secret.hex().upper(), secret.hex(" ").upper(), repr(secret)[2:-1]]
    return forms


def test_a_failing_tests_report_shows_no_secret(tmp_path: Path, project: Project) -> None:
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER))
    env = dict(os.environ, PYTHONPATH=str(Path(cardsuite.__file__).parent.parent), CARDSUITE_ROOT=str(project.root))
    env.pop("CARDSUITE_CARD", None)
    for options in ([], ["-vv", "-l", "--tb=long"]):
        done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                               "--card", "sim", "-rA", *options, "test_inner.py"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        report = done.stdout + done.stderr
        assert "7 failed" in report, report
        shown = [form for form in _forms() if form in report]
        assert not shown, f"{shown} in the report:\n{report}"
        assert "APDU trace (secrets masked)" in report and "[8 bytes masked: VERIFY reference data]" in report
        assert "CommandAPDU(00 20 00 81, Lc=8, data=[8 bytes masked: VERIFY reference data], Le=None)" in report


def test_reprs_mask_but_equality_is_unchanged() -> None:
    pin = b"8642\xff\xff\xff\xff"
    command = CommandAPDU(0x80, 0x20, 0x00, 0x81, pin)
    assert "8642" not in repr(command) and command == CommandAPDU(0x80, 0x20, 0x00, 0x81, pin)
    assert command != CommandAPDU(0x80, 0x20, 0x00, 0x81, b"1111\xff\xff\xff\xff")
    assert hash(command) == hash(CommandAPDU(0x80, 0x20, 0x00, 0x81, pin))
    assert repr(CommandAPDU(0x00, 0xB0, 0x00, 0x00, b"\x01\x02", le=4)) == \
        "CommandAPDU(00 B0 00 00, Lc=2, data=0102, Le=4)"
    # a response's data (a card number, a signed payment) shows as its length only, whatever the command was
    response = ResponseAPDU(bytes.fromhex(CARD), 0x9000)
    assert repr(response) == "ResponseAPDU(8 bytes, SW=9000)" and not [f for f in _forms() if f in repr(response)]
    assert response == ResponseAPDU(response.data, 0x9000) and response != ResponseAPDU(b"", 0x9000)
    keys = IssuerKeys(bytes.fromhex(K_E), bytes.fromhex(K_A))
    perso = Personalisation("940001", bytes(32), b"h", Limits(1, 1, 1), PIN, PUK, keys)
    for value in (keys, perso, KeySet(keys.enc, keys.mac, keys.enc), CardNumber(CARD),
                  CardManagerConfig("scp03", 1, (keys.enc, keys.mac, keys.enc))):
        assert not [form for form in _forms() if form in repr(value)], repr(value)
        assert value == dataclasses.replace(value)  # equality still compares the fields
