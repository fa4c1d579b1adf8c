"""Payment card numbers (ISO/IEC 7812-1): issuer identification number, account, Luhn check digit.

A number is the IIN (6 digits here, the first being the major industry identifier), the individual
account identification, and one check digit (the Luhn "modulus 10, double add double" of ISO/IEC
7812-1 annex B), 8 to 19 digits in all. Card numbers are secrets of the cardholder: ``masked`` is the
only form cardsuite prints (first six and last four digits, the rest ``*``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cardsuite.errors import CardsuiteError
from cardsuite.masking import opaque_eq

MIN_LENGTH = 8
MAX_LENGTH = 19
IIN_LENGTH = 6

# ISO/IEC 7812-1, the major industry identifier (first digit).
MAJOR_INDUSTRY = {
    0: "ISO/TC 68 and other industry assignments",
    1: "airlines",
    2: "airlines, financial and other future industry assignments",
    3: "travel and entertainment",
    4: "banking and financial",
    5: "banking and financial",
    6: "merchandising and banking/financial",
    7: "petroleum and other future industry assignments",
    8: "healthcare, telecommunications and other future industry assignments",
    9: "assignment by national standards bodies",
}


class CardNumberError(CardsuiteError, ValueError):
    """Not a valid ISO/IEC 7812 card number (the message never repeats the number)."""


def luhn_check_digit(partial: str) -> int:
    """The check digit that makes ``partial`` followed by it Luhn-valid."""
    if not (partial.isascii() and partial.isdigit()):
        raise CardNumberError("a card number has digits only")
    total = 0
    # the rightmost digit of the partial number is doubled (it sits left of the check digit)
    for position, char in enumerate(reversed(partial)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def luhn_valid(number: str) -> bool:
    """Whether the last digit of ``number`` is its Luhn check digit."""
    if len(number) < 2 or not (number.isascii() and number.isdigit()):
        return False
    return luhn_check_digit(number[:-1]) == int(number[-1])


def mask(number: str) -> str:
    """First six and last four digits shown, the rest ``*``: 411111******1111."""
    hidden = max(len(number) - IIN_LENGTH - 4, 0)
    if hidden == 0:
        return "*" * len(number)
    return number[:IIN_LENGTH] + "*" * hidden + number[-4:]


@opaque_eq  # pytest's failed-`==` explanation would print the digits field by field
@dataclass(frozen=True)
class CardNumber:
    """A checked card number. ``repr`` and ``str`` show it masked; ``digits`` is the number itself."""

    digits: str

    def __post_init__(self) -> None:
        d = self.digits
        if not (d.isascii() and d.isdigit()):
            raise CardNumberError("a card number has digits only (no spaces or dashes once parsed)")
        if not MIN_LENGTH <= len(d) <= MAX_LENGTH:
            raise CardNumberError(f"a card number has {MIN_LENGTH} to {MAX_LENGTH} digits, got {len(d)}")
        if not luhn_valid(d):
            raise CardNumberError("the card number's check digit is wrong (ISO/IEC 7812-1 Luhn)")

    @classmethod
    def parse(cls, text: str) -> CardNumber:
        """From user input: spaces and dashes between digit groups are allowed."""
        return cls("".join(text.replace("-", " ").split()))

    @classmethod
    def generate(cls, iin: str, length: int = 16, randbelow=secrets.randbelow) -> CardNumber:
        """A new number under ``iin``: random account digits and the Luhn check digit."""
        check_iin(iin)
        account_digits = length - len(iin) - 1
        if not MIN_LENGTH <= length <= MAX_LENGTH or account_digits < 1:
            raise CardNumberError(f"cannot make a {length}-digit number under a {len(iin)}-digit IIN")
        account = "".join(str(randbelow(10)) for _ in range(account_digits))
        partial = iin + account
        return cls(partial + str(luhn_check_digit(partial)))

    @property
    def iin(self) -> str:
        return self.digits[:IIN_LENGTH]

    @property
    def major_industry(self) -> str:
        return MAJOR_INDUSTRY[int(self.digits[0])]

    @property
    def account(self) -> str:
        return self.digits[IIN_LENGTH:-1]

    @property
    def check_digit(self) -> int:
        return int(self.digits[-1])

    @property
    def masked(self) -> str:
        return mask(self.digits)

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"CardNumber({self.masked!r})"


def check_iin(iin: str) -> str:
    """Six digits (the IIN length of ISO/IEC 7812-1:2006 that the wallet's σ carries)."""
    if not (iin.isascii() and iin.isdigit() and len(iin) == IIN_LENGTH):
        raise CardNumberError(f"an IIN has {IIN_LENGTH} digits, got {iin!r}")
    return iin
