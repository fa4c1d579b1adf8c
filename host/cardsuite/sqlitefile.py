"""The SQLite files cardsuite writes with several processes at once (the wallet's records, the SCMS
database): opened in write-ahead-log mode, readers beside one writer."""

from __future__ import annotations

import sqlite3
import time

RETRY_SECONDS = 0.02


def use_write_ahead_log(connection: sqlite3.Connection, patience: float) -> None:
    """The file in WAL mode. Switching a file there needs it alone for a moment, and SQLite answers "database is
    locked" at once, without its busy wait, while another connection writes it (serve processes starting on an
    old rollback-journal file: 22 of 40 trials of four at once, here): tried again for up to ``patience``
    seconds (the connection's busy timeout, as for any other lock)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(RETRY_SECONDS)
