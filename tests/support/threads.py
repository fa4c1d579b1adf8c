"""Races in one process: each call in its own thread, all started before any is waited for (as several serve
processes, stations or agents would come at once)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any


def at_once(target: Callable[..., object], calls: Iterable[tuple[Any, ...]], timeout: float = 120.0) -> None:
    """``target(*args)`` for every ``args`` of ``calls``; each thread waited for up to ``timeout`` seconds (what
    a call reports, it reports through its own state: the caller asserts on it)."""
    threads = [threading.Thread(target=target, args=args) for args in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
