"""A test's stand-in for the card an agent relays to: the card's own transport behind it, and every command,
a run's too, through ``transmit_raw``, which a test overrides to count, refuse or break commands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cardsuite.transport.base import Transport


class CardLink:
    def __init__(self, card: Transport) -> None:
        self._card = card

    def __getattr__(self, name: str) -> Any:  # the card's other methods as they are
        return getattr(self._card, name)

    def transmit_raw(self, command: bytes) -> bytes:
        return self._card.transmit_raw(command)

    def transmit_raw_many(self, commands: Sequence[bytes]) -> list[bytes]:
        return Transport.transmit_raw_many(self, commands)  # type: ignore[arg-type] - one by one, as above
