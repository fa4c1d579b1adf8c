"""A throwaway PostgreSQL server (Debian's postgresql package) on a free loopback port, for the tests and the
SCMS bench: initdb into a temporary folder, pg_ctl start, and everything removed at the end. Root cannot run
postgres, so as user postgres when run as root."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cardsuite.errors import ConfigurationError


class PostgresUnavailable(ConfigurationError):
    """No PostgreSQL server binaries or no psycopg here."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def throwaway_postgres(options: tuple[str, ...] = ()) -> Iterator[str]:
    """Yields the server's URL (user postgres, database postgres, trust on loopback). ``options``: extra
    ``-c name=value`` server settings (e.g. max_connections for a bench)."""
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdb:
        raise PostgresUnavailable("PostgreSQL server binaries missing (/usr/lib/postgresql/*/bin): "
                                  "apt-get install postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise PostgresUnavailable("psycopg missing: pip install 'psycopg[binary]'") from None
    bindir = Path(initdb[-1]).parent
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="cardsuite-pg-", dir="/tmp"))
    if as_postgres:
        shutil.chown(base, "postgres")
    data, port = base / "data", _free_port()
    run = {"check": True, "capture_output": True, "timeout": 120}
    settings = " ".join(f"-c {option}" for option in options)
    try:
        subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                        "-E", "UTF8"], **run)
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w",
                        "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1 {settings}", "start"], **run)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)
