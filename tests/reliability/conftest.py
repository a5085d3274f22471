"""Fixtures for the reliability tests: this machine's (or CI's) PostgreSQL and Redis for the
library tests, and one real local stack (embedded PostgreSQL and Redis, so they can be restarted)
shared by every test that injects faults."""

import os
import uuid

import psycopg
import pytest
import redis

ADMIN_URL = os.environ.get("MOVIEREC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_SERVER = os.environ.get("MOVIEREC_TEST_REDIS_URL", "redis://127.0.0.1:6379")
TEST_REDIS_DB = 11  # platform tests use 13


@pytest.fixture(scope="session")
def database_url():
    """A new, migrated database on the shared server, dropped after the run."""
    from movierec.storage import migrate

    name = f"movierec_rel_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    migrate(url)
    yield url
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(f"{REDIS_SERVER}/{TEST_REDIS_DB}")
    client.ping()
    yield client
    client.close()
