"""Fixtures for the platform tests: a fresh PostgreSQL database and Redis DB per test run.

The servers are this machine's (or CI's) real PostgreSQL and Redis; override with
``MOVIEREC_TEST_POSTGRES_URL`` (a server URL whose database may be created and dropped) and
``MOVIEREC_TEST_REDIS_URL``.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
import redis

ADMIN_URL = os.environ.get("MOVIEREC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_SERVER = os.environ.get("MOVIEREC_TEST_REDIS_URL", "redis://127.0.0.1:6379")
TEST_REDIS_DB = 13  # a DB number nobody else on the machine uses


def _url_with_database(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + database


@pytest.fixture(scope="session")
def database_url() -> str:
    """A new, empty, migrated database ``movierec_test_<random>``, dropped after the run."""
    from movierec.storage import migrate

    name = f"movierec_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _url_with_database(ADMIN_URL, name).replace("postgresql://", "postgresql+psycopg://", 1)
    migrate(url)
    yield url
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = f"{REDIS_SERVER}/{TEST_REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
