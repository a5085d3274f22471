"""Cache tasks run by a real Celery worker process on the real Redis broker."""

from __future__ import annotations

import pytest
import redis


pytestmark = [pytest.mark.integration, pytest.mark.slow]


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
