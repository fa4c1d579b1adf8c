"""ISO/IEC 7812-1 card numbers: the Luhn check digit catches every single-digit error and every adjacent
transposition except 09 ↔ 90, issued numbers carry the issuer's IIN, and a number is shown masked only."""

from __future__ import annotations

import pytest
from cardsuite.wallet.cardnumber import CardNumber, CardNumberError, luhn_check_digit, luhn_valid, mask
from hypothesis import given
from hypothesis import strategies as st

digits = st.text(alphabet="0123456789", min_size=7, max_size=18)
iins = st.text(alphabet="0123456789", min_size=6, max_size=6)


@pytest.mark.parametrize("number", ["4111111111111111", "79927398713", "6011000990139424", "5555555555554444",
                                    "378282246310005", "9410123456789010"])
def test_published_test_numbers_are_valid(number: str) -> None:
    assert luhn_valid(number)
    assert CardNumber(number).digits == number


def test_published_example_check_digit() -> None:
    assert luhn_check_digit("7992739871") == 3  # the ISO/IEC 7812-1 annex B worked example


@given(digits)
def test_the_check_digit_makes_a_valid_number(partial: str) -> None:
    number = partial + str(luhn_check_digit(partial))
    assert luhn_valid(number)


@given(digits, st.data())
def test_every_single_digit_error_is_caught(partial: str, data: st.DataObject) -> None:
    number = partial + str(luhn_check_digit(partial))
    position = data.draw(st.integers(0, len(number) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]))
    assert not luhn_valid(number[:position] + wrong + number[position + 1:])


@given(digits, st.data())
def test_adjacent_transpositions_are_caught_except_09(partial: str, data: st.DataObject) -> None:
    number = partial + str(luhn_check_digit(partial))
    i = data.draw(st.integers(0, len(number) - 2))
    a, b = number[i], number[i + 1]
    swapped = number[:i] + b + a + number[i + 2:]
    if a == b or {a, b} == {"0", "9"}:
        return  # the one blind spot of Luhn, and a swap that changes nothing
    assert not luhn_valid(swapped)


@given(iins, st.integers(12, 19))
def test_generated_numbers_have_the_iin_the_length_and_a_valid_check_digit(iin: str, length: int) -> None:
    number = CardNumber.generate(iin, length)
    assert number.iin == iin and len(number.digits) == length and luhn_valid(number.digits)
    assert number.account == number.digits[6:-1]


@given(st.text(alphabet="0123456789", min_size=12, max_size=19))
def test_the_masked_form_shows_six_and_four_digits_only(text: str) -> None:
    shown = mask(text)
    assert shown[:6] == text[:6] and shown[-4:] == text[-4:]
    assert set(shown[6:-4]) == {"*"} and len(shown) == len(text)


def test_a_number_prints_masked_and_parses_with_separators() -> None:
    number = CardNumber.parse("4111 1111-1111 1111")
    assert str(number) == "411111******1111" and "1111111111111111" not in repr(number)
    assert number.major_industry == "banking and financial"


@pytest.mark.parametrize("text, message", [
    ("4111111111111112", "check digit"),
    ("41111111111111a1", "digits only"),
    ("4111111", "8 to 19 digits"),
    ("41111111111111111111", "8 to 19 digits"),
])
def test_bad_numbers_are_refused_without_repeating_them(text: str, message: str) -> None:
    with pytest.raises(CardNumberError) as caught:
        CardNumber.parse(text)
    assert message in str(caught.value) and text not in str(caught.value)


def test_an_iin_has_six_digits() -> None:
    with pytest.raises(CardNumberError, match="6 digits"):
        CardNumber.generate("41111", 16)
