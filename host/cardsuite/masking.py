"""Which APDU data is secret: the one rule set (``mask_rules.txt``), read here and by the simulator bridge.

A rule names a command by what it is (its CLA's class and its INS), never by the application selected,
and says whether its command data, its response data or both are never shown. Traces, the bridge's log
and ``CommandAPDU``'s repr all ask these rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

from cardsuite.cla import is_secure_messaging
from cardsuite.errors import ConfigurationError

RULES_FILE = Path(__file__).with_name("mask_rules.txt")
CLASSES = ("any", "proprietary", "secure-messaging", "reserved")
HIDES = ("data", "response", "both")


def is_proprietary(cla: int) -> bool:
    return cla & 0x80 != 0 and cla != 0xFF


def is_reserved(cla: int) -> bool:
    """ISO/IEC 7816-4 5.4.1: CLA 20..3F are reserved for future use, FF is invalid."""
    return 0x20 <= cla <= 0x3F or cla == 0xFF


_CLASS_TESTS: dict[str, Callable[[int], bool]] = {
    "any": lambda cla: True,
    "proprietary": is_proprietary,
    "secure-messaging": is_secure_messaging,
    "reserved": is_reserved,
}


@dataclass(frozen=True)
class MaskRule:
    classes: str
    ins: frozenset[int] | None  # None: every INS
    hide_data: bool
    hide_response: bool
    reason: str

    def matches(self, cla: int, ins: int) -> bool:
        return (self.ins is None or ins in self.ins) and _CLASS_TESTS[self.classes](cla)


@dataclass(frozen=True)
class Masking:
    """What the rules say about one command: the reason its data / its response's data is hidden, or None."""

    data: str | None = None
    response: str | None = None


class MaskRules:
    def __init__(self, rules: Iterable[MaskRule]) -> None:
        self.rules = tuple(rules)

    @classmethod
    def parse(cls, text: str, source: str = "mask rules") -> MaskRules:
        rules = []
        for number, line in enumerate(text.splitlines(), 1):
            fields = line.split(None, 3)
            if not fields or fields[0].startswith("#"):
                continue
            where = f"{source}:{number}"
            if len(fields) < 4:
                raise ConfigurationError(f"{where}: a rule is CLASSES INS HIDE REASON, got {line.strip()!r}")
            classes, ins_text, hide, reason = fields
            if classes not in CLASSES:
                raise ConfigurationError(f"{where}: classes {classes!r}: use one of {', '.join(CLASSES)}")
            if hide not in HIDES:
                raise ConfigurationError(f"{where}: hide {hide!r}: use one of {', '.join(HIDES)}")
            rules.append(MaskRule(classes, _parse_ins(ins_text, where), hide in ("data", "both"),
                                  hide in ("response", "both"), reason.strip()))
        return cls(rules)

    @classmethod
    def load(cls, path: Path = RULES_FILE) -> MaskRules:
        return cls.parse(path.read_text(encoding="utf-8"), str(path))

    def for_command(self, cla: int, ins: int) -> Masking:
        data = response = None
        for rule in self.rules:
            if rule.matches(cla, ins):
                data = data or (rule.reason if rule.hide_data else None)
                response = response or (rule.reason if rule.hide_response else None)
        return Masking(data, response)


def _parse_ins(text: str, where: str) -> frozenset[int] | None:
    if text == "*":
        return None
    try:
        values = frozenset(int(part, 16) for part in text.split(","))
    except ValueError:
        raise ConfigurationError(f"{where}: INS {text!r}: hex bytes separated by commas, or *") from None
    if any(not 0 <= value <= 0xFF for value in values):
        raise ConfigurationError(f"{where}: INS {text!r}: each is one byte")
    return values


@cache
def default_rules() -> MaskRules:
    return MaskRules.load(RULES_FILE)


def masked(length: int, reason: str) -> str:
    """What is shown in place of hidden data."""
    return f"[{length} bytes masked: {reason}]"


T = TypeVar("T")


def opaque_eq(cls: type[T]) -> type[T]:
    """For dataclasses holding secrets (keys, PINs, card numbers): replaces the generated ``__eq__`` by an
    equal one defined here. pytest explains a failed ``==`` of two dataclasses field by field, printing the
    raw value of each differing field, only when ``__eq__`` is the generated one; with this one it shows
    the two reprs, which hide the secrets."""
    names = tuple(f.name for f in dataclasses.fields(cls) if f.compare)  # type: ignore[arg-type]

    def __eq__(self: object, other: object) -> bool:  # noqa: N807
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in names)

    cls.__eq__ = __eq__  # type: ignore[method-assign, assignment]
    return cls
