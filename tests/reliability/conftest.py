"""Fixtures for the reliability tests: this machine's (or CI's) PostgreSQL and Redis for the
library tests, and one real local stack (embedded PostgreSQL and Redis, so they can be restarted)
shared by every test that injects faults."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import redis

ADMIN_URL = os.environ.get("MOVIEREC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_SERVER = os.environ.get("MOVIEREC_TEST_REDIS_URL", "redis://127.0.0.1:6379")
TEST_REDIS_DB = 11  # platform tests use 13
BODY_TIMEOUT_S = 3.0


@pytest.fixture(scope="session")
def database_url():
    """A new, migrated database on the shared server, dropped after the run."""
    from movierec.benchmarks.scratch import scratch_database
    from movierec.storage import migrate

    with scratch_database(ADMIN_URL, prefix="movierec_rel") as url:
        migrate(url)
        yield url


@pytest.fixture
def redis_url() -> str:
    return f"{REDIS_SERVER}/{TEST_REDIS_DB}"


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.ping()
    yield client
    client.close()



@pytest.fixture(scope="session")
def fault_stack(tmp_path_factory):
    """One real stack for every fault test of the run (started once: about a minute here)."""
    from movierec.launcher.ports import free_port_offset
    from movierec.reliability.stack import FaultStack

    # not under pytest's 0700 temp root: the embedded PostgreSQL runs as its own system user when
    # we are root, and must be able to reach its data folder
    root = Path(tempfile.mkdtemp(prefix="movierec-faults-"))
    root.chmod(0o755)
    stack = FaultStack(root / "home", port_offset=free_port_offset(), say=lambda m: None,
                       extra_env={"MOVIEREC_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S)})
    try:
        with stack:
            yield stack
    finally:
        shutil.rmtree(root, ignore_errors=True)
