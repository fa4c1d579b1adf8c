"""Golden transcripts (issue 13): a card session recorded as it happened (`--record FILE`), played again later
against a simulated card (`--card replay:FILE`), failing at the first response that differs, so a real card's
session stays a regression test of the applets.

The file, JSON lines: a header, then one object per exchange ({"command": hex, "response": hex}) or card reset
({"reset": true}). It is written through the trace's masking rules (host/cardsuite/mask_rules.txt), so it never
holds a PIN, a key or secure-messaging data, whatever card it was recorded on: a command whose data the rules
hide is kept as its header, Lc, Le and the reason ({"command": {"header": ..., "lc": ..., "le": ..., "hidden":
reason}}), a hidden response as its length and status word. Replaying sends every plain command byte for byte
and compares the whole response; a hidden response is compared by length and status word. A hidden command
cannot be sent from the file: the replay takes its data from the caller (``fill``: a test's own development
values, such as the test PIN), and without one stops there, naming the line. Sessions under secure messaging
(fresh challenges, session keys) do not replay: record those parts on a simulated card with the test's keys,
or leave them out."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cardsuite.apdu import CommandAPDU, ResponseAPDU, format_sw
from cardsuite.codec import parse_hex
from cardsuite.errors import TransportError
from cardsuite.masking import Masking
from cardsuite.trace import Trace
from cardsuite.transport.base import Transport

FORMAT = 1


class TranscriptError(TransportError):
    """A transcript that cannot be read or replayed, or a card that answered otherwise than recorded."""


@dataclass(frozen=True)
class HiddenCommand:
    """A recorded command whose data the masking rules hid: what is left of it."""

    header: bytes
    lc: int
    le: int | None
    reason: str

    def with_data(self, data: bytes) -> CommandAPDU:
        if len(data) != self.lc:
            raise TranscriptError(f"the data given for {self.header.hex(' ').upper()} has {len(data)} bytes, the "
                                  f"recorded command had {self.lc}")
        return CommandAPDU(*self.header, data, self.le)


@dataclass(frozen=True)
class TranscriptStep:
    line: int
    command: CommandAPDU | HiddenCommand | None = None  # None: a reset
    response: bytes | None = None  # the whole response with its status word; None when hidden
    hidden_length: int = 0  # of a hidden response's data
    sw: int = 0


class TranscriptRecorder(Trace):
    """A trace that also writes every exchange and reset to a transcript file, masked by the trace's rules."""

    def __init__(self, path: Path, card: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.path = path
        self._out: IO[str] = path.open("w", encoding="utf-8")
        self._write({"cardsuite_transcript": FORMAT, "card": card, "masked_by": "mask_rules.txt"})

    def _write(self, entry: dict) -> None:
        self._out.write(json.dumps(entry) + "\n")
        self._out.flush()

    def recorded(self, command: CommandAPDU, response: ResponseAPDU, masking: Masking) -> None:
        if command.data and masking.data:
            sent: object = {"header": command.to_bytes()[:4].hex(), "lc": len(command.data), "le": command.le,
                            "hidden": masking.data}
        else:
            sent = command.to_bytes().hex()
        if response.data and masking.response:
            answer: object = {"length": len(response.data), "sw": f"{response.sw:04x}", "hidden": masking.response}
        else:
            answer = response.to_bytes().hex()
        self._write({"command": sent, "response": answer})

    def reset_seen(self) -> None:
        self._write({"reset": True})

    def close(self) -> None:
        self._out.close()


def read_transcript(path: Path) -> list[TranscriptStep]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TranscriptError(f"cannot read the transcript {path}: {exc}") from None
    steps: list[TranscriptStep] = []
    for number, text in enumerate(lines, start=1):
        try:
            entry = json.loads(text)
            if number == 1:
                if entry.get("cardsuite_transcript") != FORMAT:
                    raise ValueError(f"not a cardsuite transcript of format {FORMAT}")
                continue
            if entry.get("reset"):
                steps.append(TranscriptStep(number))
                continue
            sent, answer = entry["command"], entry["response"]
            if isinstance(sent, dict):
                command: CommandAPDU | HiddenCommand = HiddenCommand(parse_hex(sent["header"], "a header"), sent["lc"],
                                                                     sent["le"], sent["hidden"])
            else:
                command = CommandAPDU.from_bytes(parse_hex(sent, "a command"))
            if isinstance(answer, dict):
                steps.append(TranscriptStep(number, command, None, answer["length"], int(answer["sw"], 16)))
            else:
                raw = parse_hex(answer, "a response")
                steps.append(TranscriptStep(number, command, raw, sw=ResponseAPDU.from_bytes(raw).sw))
        except (ValueError, KeyError, TypeError) as exc:
            raise TranscriptError(f"{path}:{number}: {exc}") from None
    return steps


def replay(path: Path, card: Transport, fill: Callable[[HiddenCommand], bytes] | None = None) -> int:
    """Plays the transcript against ``card`` (raw exchanges: no 61xx/6Cxx handling, as recorded); the number of
    exchanges. TranscriptError at the first response that differs, or at a hidden command without ``fill``."""
    count = 0
    for step in read_transcript(path):
        if step.command is None:
            card.reset()
            continue
        command = step.command
        if isinstance(command, HiddenCommand):
            if fill is None:
                raise TranscriptError(
                    f"{path}:{step.line}: {command.header.hex(' ').upper()} was recorded masked ({command.reason}): "
                    "its data is not in the transcript; replay it with the data given (fill=...), or record that "
                    "part on a simulated card")
            command = command.with_data(fill(command))
        got = card.exchange(command)
        count += 1
        header = command.to_bytes()[:4].hex(" ").upper()
        if step.response is None:
            if (len(got.data), got.sw) != (step.hidden_length, step.sw):
                raise TranscriptError(f"{path}:{step.line}: {header} answered {len(got.data)} bytes "
                                      f"{format_sw(got.sw)}, recorded {step.hidden_length} bytes "
                                      f"{format_sw(step.sw)} (data masked)")
        elif got.to_bytes() != step.response:
            raise TranscriptError(f"{path}:{step.line}: {header} answered {got.data.hex().upper()} "
                                  f"{format_sw(got.sw)}, recorded {step.response[:-2].hex().upper()} "
                                  f"{format_sw(step.sw)}")
    return count
