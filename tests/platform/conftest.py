"""Fixtures for the platform tests: a fresh PostgreSQL database and Redis DB per test run.

The servers are this machine's (or CI's) real PostgreSQL and Redis; override with
``MOVIEREC_TEST_POSTGRES_URL`` (a server URL whose database may be created and dropped) and
``MOVIEREC_TEST_REDIS_URL``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from movierec.settings import REPO_ROOT

ADMIN_URL = os.environ.get("MOVIEREC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_SERVER = os.environ.get("MOVIEREC_TEST_REDIS_URL", "redis://127.0.0.1:6379")
TEST_REDIS_DB = 13  # a DB number nobody else on the machine uses


def _url_with_database(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + database


@pytest.fixture
def private_tmp() -> Path:
    """A temporary folder outside pytest's numbered ones, which a concurrent pytest run on the
    same machine may rotate away while a long stack test is still using them."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="movierec-platform-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


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


@contextlib.contextmanager
def celery_worker(redis_url: str, database_url: str, log_path: Path):
    """A real Celery worker process; yields a Celery app on the same broker to send tasks with."""
    from movierec.tasks.app import make_celery

    env = dict(os.environ, MOVIEREC_REDIS_URL=redis_url, MOVIEREC_DATABASE_URL=database_url,
               MOVIEREC_GATEWAY_URL="http://127.0.0.1:9", OMP_NUM_THREADS="1")
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "movierec.tasks.app", "worker", "--pool=solo", "--loglevel=INFO",
             "-n", f"test-worker-{uuid.uuid4().hex[:6]}@%h"],
            cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
        app = make_celery(redis_url)
        try:
            deadline = time.monotonic() + 60
            while not app.control.ping(timeout=1.0):
                assert proc.poll() is None, log_path.read_text()
                if time.monotonic() > deadline:
                    pytest.fail("the Celery worker did not answer a ping within 60 s")
            yield app
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture
def e2e_redis_url() -> str:
    """The end-to-end stack's Redis DB (its own, so no other test's worker takes its tasks)."""
    url = f"{REDIS_SERVER}/{TEST_REDIS_DB - 2}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()


@pytest.fixture
def private_redis_url() -> str:
    """Another Redis DB, so the session's worker does not take this test's tasks."""
    url = f"{REDIS_SERVER}/{TEST_REDIS_DB - 1}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()


@pytest.fixture(scope="session")
def worker_factory():
    """``worker_factory(redis_url, database_url, log_path)``: a context manager running a real worker."""
    return celery_worker


@pytest.fixture(scope="session")
def worker(redis_url: str, database_url: str):
    """A real Celery worker on the test Redis DB and database."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="movierec-worker-") as folder:
        with celery_worker(redis_url, database_url, Path(folder) / "worker.log") as app:
            yield app


@pytest.fixture(scope="session")
def port_offsets():
    """Call it for a port offset under which every stack port is free."""
    from movierec.launcher.ports import free_port_offset

    return free_port_offset


def require_prometheus() -> None:
    from movierec.launcher.prometheus import prometheus_binary

    if prometheus_binary() is None:
        message = "prometheus is not installed (Debian: apt-get install prometheus; make test installs it)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def prometheus_installed() -> None:
    require_prometheus()


DASHBOARD_DIR = REPO_ROOT / "infra" / "grafana" / "dashboards"
_PROMQL_WORDS = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def panel_queries() -> list[tuple[str, str]]:
    """(dashboard: panel title, PromQL) for every panel target of every provisioned dashboard."""
    queries = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            queries += [(f"{path.stem}: {panel['title']}", t["expr"]) for t in panel.get("targets", [])]
    return queries


def _metric_families(exposition: str) -> set[str]:
    return {line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE ")}


def _query(prom: str, expr: str) -> list:
    body = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


def check_prometheus(stack, timeout_s: float = 120) -> int:
    """Every scrape target of ``stack`` is up in its Prometheus, and every dashboard query that
    reads only metrics the running services expose returns data. Returns how many were checked.
    Metric names a panel uses that no running service exposes fail the check when the full stack
    runs (``stack.options.services`` is None or holds every service)."""
    from movierec.launcher.services import SERVICES

    from datetime import datetime, timedelta, timezone

    prom = stack.prometheus_url
    jobs = set(stack.scrape_ports())
    # two scrapes of every target after the traffic, so rate() has two points for every series
    wanted = datetime.now(timezone.utc) + timedelta(seconds=6)
    deadline = time.monotonic() + timeout_s
    while True:
        targets = httpx.get(f"{prom}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        scraped = [datetime.fromisoformat(t["lastScrape"].replace("Z", "+00:00")) for t in targets]
        if set(health) == jobs and all(h == "up" for h in health.values()) and all(when > wanted for when in scraped):
            break
        assert time.monotonic() < deadline, f"targets not all up and scraped twice: {health}"
        time.sleep(1)
    exposed = {"up"}
    for port in stack.scrape_ports().values():
        exposed |= _metric_families(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    deadline = time.monotonic() + 60
    full = stack.options.services is None or set(stack.options.services) >= {s.name for s in SERVICES}
    checked = 0
    for title, expr in panel_queries():
        bare = re.sub(r'\{[^}]*\}|\b(by|without)\s*\([^)]*\)|"[^"]*"', "", expr)  # drop label names and values
        names = {w for w in _PROMQL_WORDS.findall(bare)
                 if re.fullmatch(r"(movierec|http|feedback|celery|features|policy)_[a-z_]+", w)}
        missing = {n for n in names if not {n, n.removesuffix("_bucket"), n.removesuffix("_total")} & exposed}
        if missing:
            assert not full, f"{title}: {sorted(missing)} exposed by no service"
            continue
        # a series born during the last scrapes has one point yet: give it a few more scrapes
        while not _query(prom, expr):
            assert time.monotonic() < deadline, f"{title}: no data for {expr}"
            time.sleep(2)
        checked += 1
    return checked


@pytest.fixture(scope="session")
def prometheus_check():
    """``prometheus_check(stack)``: see ``check_prometheus``."""
    return check_prometheus
