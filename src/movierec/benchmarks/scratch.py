"""A throw-away PostgreSQL database on a configured server, for benchmark and load-test runs
that must not touch anyone's data."""

from __future__ import annotations

import contextlib
import uuid
from typing import Iterator

import psycopg


def _admin(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str = "movierec_bench") -> Iterator[str]:
    """Create ``<prefix>_<random>`` on the server of ``server_url`` (any database URL there),
    yield its SQLAlchemy URL, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = _admin(server_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, rest = admin.rpartition("/")
    query = ("?" + rest.split("?", 1)[1]) if "?" in rest else ""
    url = f"{base}/{name}{query}".replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
