"""The terminal link: JSON messages over one WebSocket, each numbered. The agent's messages count 1, 2, 3…
(its request, then one response per command) and the server accepts each only as the one after the last it
accepted (InOrder): a replayed, reordered or forged-order message is refused and the link closed. A request
lives on the one link that made it, so the count is kept where that link ends, in the server process that
holds it: no other process can receive a message of that request (a link that breaks ends the request; the
agent makes a new one). The server's commands carry their own number, which the response repeats.

A run of commands (``apdus``: commands whose answers are 9000 or the end, as LOAD blocks and the INSTALL
[for load] before them, or the registry's GET STATUS) goes in one message: the agent sends them to the card
in order, stops after the first answer that is not 9000, and sends the answers back in one response
(``rapdus``). One message each way per run, not one per command: each message costs both ends about half a
millisecond (JSON, hex, a WebSocket frame, a TLS record, a thread's wake-up), as much as a LOAD block costs the
simulated card (2026-12-02). For the same reason the ADS's progress lines travel in its next message
(``progress``: a list of lines, shown before the message is acted on), not one message each.

APDUs travel as hex (the wire is text; codec rules apply at this edge only). The agent holds no key: what it
relays is already wrapped by the ADS's secure channel, or plain (SELECT, GET DATA before authentication).
"""

from __future__ import annotations

import json
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cardsuite.apdu import SW_OK, StatusError
from cardsuite.codec import HexError, parse_hex
from cardsuite.errors import CardsuiteError, TransportError
from cardsuite.transport.base import Transport

RELAY_TIMEOUT = 120.0  # seconds the ADS waits for the terminal's answer to one command
# the messages' version, in the agent's request (one it does not speak is refused before any request is made
# of it): 1 one message per answer, 2 a run's answers in one (rapdus), 3 progress lines in the server's next
# message, not messages of their own (an agent that names none speaks 1)
RELAY_PROTOCOL = 3


# the server's WebSocket close codes (private range 4000-4999, RFC 6455 7.4.2): the agent does not retry these
CLOSE_PROTOCOL = 4400
CLOSE_UNAUTHORISED = 4401
# keepalive: a ping every 20 s (websockets' default), answered within 60 s: a server busy with many
# terminals answers late, and the default 20 s dropped links under 50 terminals on 2 cores (the bench)
PING_TIMEOUT = 60.0

class RelayError(CardsuiteError):
    """A relay message is malformed or out of order; the link is closed."""


@dataclass
class InOrder:
    """The agent's message numbers on one link: each accepted only as the one after the last accepted."""

    last: int = 0

    def accept(self, seq: int) -> bool:
        if seq != self.last + 1:
            return False
        self.last = seq
        return True


@dataclass(frozen=True)
class Message:
    kind: str  # request, accepted, apdu, apdus, reset, pin, response, done, failed
    seq: int
    body: dict[str, Any]

    def encode(self) -> str:
        return json.dumps({"type": self.kind, "seq": self.seq, **self.body})

    @classmethod
    def decode(cls, text: str | bytes) -> Message:
        try:
            data = json.loads(text)
            kind, seq = data.pop("type"), data.pop("seq")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RelayError("a relay message is not {type, seq, …} JSON") from None
        if not isinstance(kind, str) or not isinstance(seq, int) or isinstance(seq, bool):
            raise RelayError("a relay message's type is a string and its seq a number")
        return cls(kind, seq, data)

    def apdu(self, name: str) -> bytes:
        return self._hex(self.body.get(name), name)

    def apdus(self, name: str) -> list[bytes]:
        values = self.body.get(name)
        if not isinstance(values, list) or not values:
            raise RelayError(f"a relay {self.kind} message has no list {name}")
        return [self._hex(value, name) for value in values]

    def _hex(self, value: object, name: str) -> bytes:
        if not isinstance(value, str):
            raise RelayError(f"a relay {self.kind} message has no {name}")
        try:
            return parse_hex(value, f"relay {name}", secret=True)
        except HexError as exc:
            raise RelayError(str(exc)) from None


def with_progress(message: Message, lines: list[str]) -> Message:
    """``message`` carrying the progress lines told since the last one, which ``lines`` then forgets."""
    if not lines:
        return message
    told, lines[:] = list(lines), []
    return Message(message.kind, message.seq, {**message.body, "progress": told})


class RelayTransport(Transport):
    """The ADS's side of the link: each command goes out as an ``apdu`` message through ``send`` and its
    response comes back through ``deliver`` (called by the server for each agent message, already checked
    for its order). Runs in the ADS's thread; ``send`` crosses to the server's event loop."""

    # a run costs a round trip whatever its length: a CAP file's LOAD blocks (up to 256, [GPCS] 11.6.2.3) in
    # one run each 64 (2026-12-03: 7 runs of 16 for the bench's four load files, 4 of 64)
    load_window = 64
    runs_cost_one_round_trip = True

    def __init__(self, send: Callable[[Message], None], atr: bytes, name: str = "relay") -> None:
        super().__init__()
        self._send = send
        self._atr = atr
        self.name = name
        self._seq = 0
        self._responses: queue.Queue[Message | None] = queue.Queue()
        self._gone = False  # the terminal went away: every later command fails at once (a deploy's clean-up
        # after the first failure would otherwise wait RELAY_TIMEOUT per command for a link that is down)

    def connect(self) -> None:
        pass

    def disconnect(self) -> None:
        self._responses.put(None)

    @property
    def atr(self) -> bytes:
        return self._atr

    def _end_exclusive(self, reset: bool) -> None:
        """No reset sent at the ADS's end of the flow: the agent's own flow around the link ends with the card
        reset (its transport saw each command that left security state, Transport.exclusive), and a terminal
        that ignored the request could ignore a reset message too. One round trip less."""

    def reset(self) -> bytes:
        self._seq += 1
        self._send(Message("reset", self._seq, {}))
        self._await(self._seq)
        return self._atr

    def deliver(self, message: Message | None) -> None:
        self._responses.put(message)

    def _await(self, seq: int) -> Message:
        if self._gone:
            raise TransportError("the terminal went away")
        try:
            message = self._responses.get(timeout=RELAY_TIMEOUT)
        except queue.Empty:
            raise TransportError(f"the terminal did not answer within {RELAY_TIMEOUT:.0f} s") from None
        if message is None:
            self._gone = True
            raise TransportError("the terminal went away")
        if message.kind != "response" or message.body.get("command") != seq:
            raise RelayError(f"the terminal answered command {message.body.get('command')}, expected {seq}")
        return message

    def cardholder_pin(self, aid: bytes, initial_pin: str, puk: str) -> str:
        """The terminal's PIN step (ads.CardholderPin): the agent asks the cardholder and changes the one-time
        PIN on the card itself; only the outcome comes back."""
        self._seq += 1
        self._send(Message("pin", self._seq, {"aid": aid.hex().upper(), "initial": initial_pin, "puk": puk}))
        answer = self._await(self._seq)
        if answer.body.get("ok") is not True:
            sw = answer.body.get("sw")
            if isinstance(sw, int) and 0 <= sw <= 0xFFFF:
                raise StatusError(sw)  # the card's refusal (the one-time PIN no longer its PIN: ads decides)
            raise TransportError(f"the cardholder's PIN was not set: {answer.body.get('reason', 'no reason')}")
        return "chosen by the cardholder at the terminal (not sent to the server)"

    def transmit_raw(self, command: bytes) -> bytes:
        self._seq += 1
        self._send(Message("apdu", self._seq, {"apdu": command.hex().upper()}))
        return self._await(self._seq).apdu("rapdu")

    def transmit_raw_many(self, commands: Sequence[bytes]) -> list[bytes]:
        """The run in one message and its answers in one, which must end at the first answer that is not
        9000 (the rule of Transport.transmit_raw_many, which the agent runs)."""
        self._seq += 1
        self._send(Message("apdus", self._seq, {"apdus": [command.hex().upper() for command in commands]}))
        answers = self._await(self._seq).apdus("rapdus")
        stops = [index for index, answer in enumerate(answers) if int.from_bytes(answer[-2:], "big") != SW_OK]
        whole = not stops and len(answers) == len(commands)  # every command answered 9000
        cut = stops[:1] == [len(answers) - 1] and len(answers) <= len(commands)  # ended at the first other one
        if not (whole or cut):
            raise RelayError(f"the terminal's {len(answers)} answers to a run of {len(commands)} commands do not "
                             "end at the first answer other than 9000")
        return answers
