"""The `cardsuite` command itself: raw APDUs to a card in a PC/SC reader, as a user types them."""

from cardsuite.cli.main import main
from support import ABSENT_AID, ECHO_AID, select_hex


def test_send_over_a_pcsc_reader_and_the_card_keeps_its_state(reader_card, capsys) -> None:
    spec = f"vpcd:{reader_card.slot}"
    assert main(["send", "--card", spec, select_hex(ECHO_AID), "8001000003010203"]) == 0
    assert capsys.readouterr().out.splitlines() == ["9000 (success)", "010203 9000 (success)"]
    # a second program finds the card as the first left it: still powered, echo still selected
    assert main(["send", "--card", spec, "8001000001AA"]) == 0
    assert capsys.readouterr().out.strip() == "AA 9000 (success)"


def test_a_status_word_other_than_9000_is_exit_status_2(reader_card, capsys) -> None:
    assert main(["send", "--card", f"vpcd:{reader_card.slot}", select_hex(ABSENT_AID)]) == 2
    assert "6A82 (file or application not found)" in capsys.readouterr().out


def test_an_unknown_reader_lists_the_readers(capsys) -> None:
    assert main(["send", "--card", "reader:no such reader", "00A40400"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("Error: no unique PC/SC reader matches 'no such reader'; readers: 0: 'Virtual PCD 00 00'")
