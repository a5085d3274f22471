"""Cache tasks run by a real Celery worker process on the real Redis broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import redis

from movierec.settings import REPO_ROOT
from movierec.tasks.app import make_celery

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def worker(redis_url: str):
    env = dict(os.environ, MOVIEREC_REDIS_URL=redis_url, MOVIEREC_GATEWAY_URL="http://127.0.0.1:9", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "movierec.tasks.app", "worker", "--pool=solo", "--loglevel=INFO", "-n", "test-worker@%h"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    app = make_celery(redis_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.control.ping(timeout=1.0):
            break
        assert proc.poll() is None, proc.stdout.read()
    else:
        proc.kill()
        pytest.fail("the Celery worker did not answer a ping within 60 s")
    yield app
    proc.terminate()
    proc.wait(timeout=30)


def test_invalidation_removes_only_that_users_cached_lists(worker, redis_url: str):
    client = redis.Redis.from_url(redis_url)
    client.set("recs:5:default", "[1,2,3]")
    client.set("recs:5:genres=Drama", "[4]")
    client.set("recs:55:default", "[9]")  # another user whose id starts the same way
    client.set("recs:6:default", "[7]")
    result = worker.send_task("movierec.tasks.cache.invalidate_user_recs", args=[5])
    assert result.get(timeout=60) == 2
    assert client.exists("recs:5:default", "recs:5:genres=Drama") == 0
    assert client.exists("recs:55:default", "recs:6:default") == 2


def test_invalidation_of_a_user_without_cache_is_a_no_op(worker):
    assert worker.send_task("movierec.tasks.cache.invalidate_user_recs", args=[424242]).get(timeout=60) == 0
