"""Record-only database writes of one job, done in order on a thread of their own, so that the job does not
wait for their commits. The SCMS's ADS hands over its step records (with their APDU exchanges and key uses)
and the deploy's inventory events: about 25 commits per post-issuance, each about 1 ms on PostgreSQL at
loopback, each on the relay's path before (issue 14's time per relayed APDU).

The rule that keeps it simple: the writes go over the job's own connections, and any other use of those
connections (a read, or a write something depends on: a claim, a key set written ahead of PUT KEY, the
request's end) first waits until every write handed over is done (``drain``). The database therefore sees
each statement in the order the job made it, as before; only the job no longer waits for the records.

A crash loses at most the writes still queued: the records of the last steps, as a crash just before their
commit would have. The card stays the truth that the next run reads back (the deployer's plan). A write that
fails is raised in the job at its next hand-over or use of the connection.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class DeferredWrites:
    """One job's writer thread (see the module). ``close`` when the job ends."""

    def __init__(self, name: str) -> None:
        self._queue: queue.Queue[Callable[[], object] | None] = queue.Queue()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            write = self._queue.get()
            try:
                if write is None:
                    return
                write()
            except BaseException as exc:  # noqa: BLE001 - the job takes it (defer, drain)
                self._failure = self._failure or exc
            finally:
                self._queue.task_done()

    @property
    def here(self) -> bool:
        """Whether the caller is the writer's own thread (its writes run where they are called)."""
        return threading.current_thread() is self._thread

    def defer(self, write: Callable[[], object]) -> None:
        self._raise_failure()
        self._queue.put(write)

    def drain(self) -> None:
        """Returns when every write handed over is done; raises the first that failed since the last call."""
        self._queue.join()
        self._raise_failure()

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def close(self) -> None:
        """Ends the thread after the writes handed over (a failure among them is left untold: drain first)."""
        self._queue.put(None)
        self._thread.join()
