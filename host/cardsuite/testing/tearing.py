"""Power lost at every persistent write of one command: the loop every atomicity test needs, written once.

The simulator bridge cuts power at the n-th persistent write (`SimulatorTransport.tear_after_writes`); a
command is atomic when, torn at each of its writes, the card comes back after a reset in the old state or,
for writes after the commit, in the new one. The caller says how to send the command, how to bring the card
back and what to check after each tear; this module only walks the tear points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from cardsuite.errors import CardTornError

T = TypeVar("T")


class TearableCard(Protocol):
    """What tearing needs of a card: the in-process simulator has it, pcscd and real readers do not."""

    def tear_after_writes(self, writes: int) -> None: ...
    def persistent_write_count(self) -> int: ...
    def reset(self) -> bytes: ...


@dataclass(frozen=True)
class Completed(Generic[T]):
    """The run that was not torn: what `send` returned, and how many tear points came before it."""

    result: T | None
    torn: int


class TearAtEveryWrite:
    """Sends one command torn at its 1st, 2nd, ... persistent write.

    Two ways to walk the points:
    - `writes=None` (the default): tear at 1, 2, ... until the command completes untorn; returns that run.
      For a command whose number of writes the test does not know beforehand.
    - `writes=N` (counted by an untorn run, see `count_writes`): tear at 1..N; every one must tear.

    Before each run `prepare()` (select, verify a PIN, take a snapshot); after each tear `recover()` (a
    reset by default) and then `after_tear(point)`, where the test asserts the state it expects.
    """

    def __init__(self, card: TearableCard) -> None:
        self.card = card

    def count_writes(self, send: Callable[[], T]) -> tuple[T, int]:
        """Runs `send` untorn; returns its result and the persistent writes it made (its tear points)."""
        result = send()
        return result, self.card.persistent_write_count()

    def __call__(self, send: Callable[[], T], *, after_tear: Callable[[int], None],
                 prepare: Callable[[], object] | None = None, recover: Callable[[], object] | None = None,
                 writes: int | None = None) -> Completed[T]:
        point = 1
        while writes is None or point <= writes:
            if prepare is not None:
                prepare()
            self.card.tear_after_writes(point)
            try:
                result = send()
            except CardTornError:
                (recover or self.card.reset)()
                after_tear(point)
                point += 1
                continue
            if writes is not None:
                raise AssertionError(f"not torn at write {point} of {writes}: the command made fewer writes")
            return Completed(result, point - 1)
        return Completed(None, writes)
