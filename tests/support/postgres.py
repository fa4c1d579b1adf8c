"""A throwaway PostgreSQL server for the session (cardsuite.tooling.postgres), shared by the inventory's and
the SCMS's tests: ``postgres_url`` (the server's one database, shared by the tests) and ``empty_url`` (an
empty database of the test's own, on SQLite and on PostgreSQL: the schema migrations' tests)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from cardsuite.tooling.postgres import PostgresUnavailable, throwaway_postgres


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    try:
        server = throwaway_postgres()
        url = server.__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


_numbers = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a file, or a new database on the session's PostgreSQL server (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    import psycopg

    server = request.getfixturevalue("postgres_url")
    name = f"cardsuite_test_{next(_numbers)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
