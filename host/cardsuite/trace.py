"""APDU traces with secrets masked.

A trace records every exchange of a transport. Commands that carry PINs or keys are recognised by a
masking rule and their data field is never kept: the trace stores only its length. Other modules
(the wallet, the card manager) register the rules for their own commands.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .apdu import CommandAPDU, ResponseAPDU, sw_meaning


@dataclass(frozen=True)
class MaskRule:
    """Commands whose data (and optionally response data) must never be shown."""

    ins: int
    cla_class: int | None = None  # CLA with channel and secure-messaging bits cleared; None for any
    mask_response: bool = False
    reason: str = "secret"
    aid: bytes | None = None  # only while this application is selected; None for any

    def matches(self, command: CommandAPDU, selected: bytes | None = None) -> bool:
        """``selected`` is the application the trace saw selected; when it is unknown, a rule for a
        particular application applies anyway: masking too much is the safe mistake."""
        if command.ins != self.ins:
            return False
        if self.cla_class is not None and (command.cla & 0xF0) != self.cla_class:
            return False
        return self.aid is None or selected is None or selected == self.aid


# ISO 7816-4 commands that carry reference data (PINs, PUKs).
MASK_RULES: list[MaskRule] = [
    MaskRule(0x20, cla_class=0x00, reason="VERIFY reference data"),
    MaskRule(0x24, cla_class=0x00, reason="CHANGE REFERENCE DATA"),
    MaskRule(0x2C, cla_class=0x00, reason="RESET RETRY COUNTER"),
]


def register_mask_rule(rule: MaskRule) -> None:
    if rule not in MASK_RULES:
        MASK_RULES.append(rule)


def _rule_for(command: CommandAPDU, selected: bytes | None) -> MaskRule | None:
    for rule in MASK_RULES:
        if rule.matches(command, selected):
            return rule
    return None


@dataclass(frozen=True)
class TraceEntry:
    """One exchange, already masked: nothing secret is ever stored here."""

    command: str
    response: str
    sw: int
    seconds: float

    def format(self) -> str:
        data = f"{self.response} " if self.response else ""
        return f">> {self.command}\n<< {data}{self.sw:04X} ({sw_meaning(self.sw)}) [{self.seconds * 1000:.2f} ms]"


def mask_exchange(command: CommandAPDU, response: ResponseAPDU | None,
                  selected: bytes | None = None) -> tuple[str, str]:
    rule = _rule_for(command, selected)
    header = f"{command.cla:02X} {command.ins:02X} {command.p1:02X} {command.p2:02X}"
    if command.data:
        body = (
            f"[{len(command.data)} bytes masked: {rule.reason}]" if rule else command.data.hex(" ").upper()
        )
        header += f" {len(command.data):02X} {body}"
    if command.le is not None:
        header += f" Le={command.le}"
    if response is None:
        return header, "(no response)"
    if response.data and rule is not None and rule.mask_response:
        return header, f"[{len(response.data)} bytes masked: {rule.reason}]"
    return header, response.data.hex(" ").upper()


class Trace:
    """Keeps the last ``limit`` exchanges and forwards each one to the sinks (printing, logging)."""

    def __init__(self, limit: int = 200, sinks: Iterable[Callable[[TraceEntry], None]] = ()) -> None:
        self.entries: deque[TraceEntry] = deque(maxlen=limit)
        self.sinks = list(sinks)
        self.selected: bytes | None = None  # the application last selected by name, as far as seen

    def record(self, command: CommandAPDU, response: ResponseAPDU, started: float) -> None:
        shown_command, shown_response = mask_exchange(command, response, self.selected)
        if command.ins == 0xA4 and command.p1 == 0x04 and command.cla & 0x80 == 0 and response.sw1 in (0x90, 0x61):
            self.selected = command.data
        entry = TraceEntry(shown_command, shown_response, response.sw, time.perf_counter() - started)
        self.entries.append(entry)
        for sink in self.sinks:
            sink(entry)

    def clear(self) -> None:
        self.entries.clear()

    def format(self) -> str:
        return "\n".join(entry.format() for entry in self.entries)
