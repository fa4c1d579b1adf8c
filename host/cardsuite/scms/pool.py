"""Database connections kept open between requests in one serve process. Opening one costs a TCP connect and
the database server's start-up (about 6 ms on loopback, PostgreSQL), paid twice per terminal link before: the
link's own connection (on the event loop) and the ADS's inventory."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Reusable(Protocol):
    def idle(self) -> bool: ...

    def close(self) -> None: ...


C = TypeVar("C", bound=Reusable)


class Pool(Generic[C]):
    """Up to ``keep`` connections wait for the next taker; one given back that is not idle (closed, or left
    in a transaction by a failure) is closed instead of kept."""

    def __init__(self, open_one: Callable[[], C], keep: int = 8) -> None:
        self._open = open_one
        self._keep = keep
        self._idle: list[C] = []
        self._lock = threading.Lock()

    def take(self) -> C:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._open()

    def give(self, connection: C) -> None:
        if connection.idle():
            with self._lock:
                if len(self._idle) < self._keep:
                    self._idle.append(connection)
                    return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
