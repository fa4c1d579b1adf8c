"""A child process stopped for a test (a card that stops answering): stopped in fact, not only signalled."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

_STOP_WAIT = 5.0  # seconds; a JVM's threads all stop within milliseconds, even on a loaded machine


@contextmanager
def suspended(process: subprocess.Popen) -> Iterator[None]:
    """SIGSTOP ``process`` and return only once every one of its threads has stopped; SIGCONT at the end.

    kill() only queues SIGSTOP: one thread of the group takes it when it next runs and only then stops the
    others (Linux kernel/signal.c, do_signal_stop), so the threads of a JVM such as the bridge's can go on
    running for a while after kill() returned. A vpcd round trip takes a few hundred microseconds: a command
    sent at once could be answered by the "stopped" card. waitpid(WUNTRACED) tells the parent once the whole
    group has stopped."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + _STOP_WAIT
        while True:
            pid, status = os.waitpid(process.pid, os.WUNTRACED | os.WNOHANG)
            if pid and os.WIFSTOPPED(status):
                break
            if pid:  # it ended instead (reaped here: tell the Popen, which can no longer wait for it)
                process.returncode = os.waitstatus_to_exitcode(status)
                raise RuntimeError(f"process {process.pid} ended ({process.returncode}) instead of stopping")
            if time.monotonic() > deadline:
                raise RuntimeError(f"process {process.pid} did not stop within {_STOP_WAIT:g} s of SIGSTOP")
            time.sleep(0.001)
        yield
    finally:
        if process.returncode is None:
            os.kill(process.pid, signal.SIGCONT)
