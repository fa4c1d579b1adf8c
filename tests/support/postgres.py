"""A throwaway PostgreSQL server for the session (cardsuite.tooling.postgres), shared by the inventory's and
the SCMS's tests: import ``postgres_url`` into a test module to use it."""

from __future__ import annotations

from collections.abc import Iterator

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
