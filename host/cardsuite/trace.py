"""APDU traces with secrets masked.

A trace records every exchange of a transport. What a command's data or its response's data may show is
decided by the one rule set of ``masking`` (``mask_rules.txt``), by what the command is: hidden data is
never kept, the trace stores only its length.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cardsuite.apdu import CommandAPDU, ResponseAPDU, sw_meaning
from cardsuite.masking import Masking, MaskRules, default_rules, masked

INS_GET_RESPONSE = 0xC0


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


def format_command(command: CommandAPDU, masking: Masking) -> str:
    """Header, Lc and the data (or what hides it), Le."""
    shown = f"{command.cla:02X} {command.ins:02X} {command.p1:02X} {command.p2:02X}"
    if command.data:
        body = masked(len(command.data), masking.data) if masking.data else command.data.hex(" ").upper()
        shown += f" {len(command.data):02X} {body}"
    if command.le is not None:
        shown += f" Le={command.le}"
    return shown


class Trace:
    """Keeps the last ``limit`` exchanges and forwards each one to the sinks (printing, logging)."""

    def __init__(self, limit: int = 200, sinks: Iterable[Callable[[TraceEntry], None]] = (),
                 rules: MaskRules | None = None) -> None:
        self.entries: deque[TraceEntry] = deque(maxlen=limit)
        self.sinks = list(sinks)
        self.rules = rules or default_rules()
        # A response the rules hide may come in parts: 61xx, then GET RESPONSE (ISO/IEC 7816-4 5.3.4 / T=0).
        # The GET RESPONSE answers for the command before it, so it hides what that command's rule hides.
        self._hidden_response: str | None = None

    def record(self, command: CommandAPDU, response: ResponseAPDU, started: float) -> None:
        masking = self.rules.for_command(command.cla, command.ins)
        if command.ins == INS_GET_RESPONSE and self._hidden_response and not masking.response:
            masking = Masking(masking.data, self._hidden_response)
        self._hidden_response = masking.response if response.sw1 == 0x61 else None
        self.recorded(command, response, masking)
        shown_response = response.data.hex(" ").upper()
        if response.data and masking.response:
            shown_response = masked(len(response.data), masking.response)
        entry = TraceEntry(format_command(command, masking), shown_response, response.sw,
                           time.perf_counter() - started)
        self.entries.append(entry)
        for sink in self.sinks:
            sink(entry)

    def recorded(self, command: CommandAPDU, response: ResponseAPDU, masking: Masking) -> None:
        """Hook for a subclass keeping more than the trace (a transcript): the exchange and what hides it."""

    def reset_seen(self) -> None:
        """Hook: the card was reset (a transcript replays resets)."""

    def clear(self) -> None:
        self.entries.clear()
        self._hidden_response = None

    def format(self) -> str:
        return "\n".join(entry.format() for entry in self.entries)

