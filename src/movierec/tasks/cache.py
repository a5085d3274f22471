"""Tasks on the gateway's per-user recommendation cache in Redis.

Key format: ``movierec.storage.recs_cache_keys`` (the gateway writes the entries): every cached
list for user ``u`` lives under a key that starts with ``recs:{u}:`` (one key per filter
combination). Invalidation deletes them all; refresh then asks the gateway for a fresh list,
which fills the cache again. After a new policy version is published, every user's lists go
(``drop_cached_lists_after_publish``): the lists a hit would serve were chosen by the version
before.
"""

from __future__ import annotations

import logging

import httpx
import redis
from celery import shared_task
from kombu.exceptions import OperationalError as BrokerError

from movierec.settings import get_settings
from movierec.storage import recs_cache_keys as keys

log = logging.getLogger(__name__)

PUBLISH_SETTLE_S = 5.0
"""After a publish every cached list is dropped at once and again this much later: the policy
service looks for a new version at most every ``reload_interval_s`` (2 s by default), so a list
cached in between may still be the earlier version's."""


def delete_user_cache(client: redis.Redis, user_id: int) -> int:
    """Delete every cached recommendation list of ``user_id``; returns how many keys went."""
    return delete_matching(client, keys.user_lists(user_id))


def delete_matching(client: redis.Redis, pattern: str) -> int:
    """Delete every key matching the glob ``pattern``, in batches; returns how many went."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=500):
        batch.append(key)
        if len(batch) >= 500:
            deleted += client.delete(*batch)
            batch.clear()
    if batch:
        deleted += client.delete(*batch)
    return deleted


def broker_redis() -> redis.Redis:
    from movierec.tasks.app import celery_app  # the broker URL is the cache URL

    return redis.Redis.from_url(celery_app.conf.broker_url, socket_timeout=5, socket_connect_timeout=5)


@shared_task(
    name="movierec.tasks.cache.invalidate_user_recs",
    autoretry_for=(redis.RedisError,), retry_backoff=True, retry_backoff_max=30, max_retries=10,
)
def invalidate_user_recs(user_id: int, refresh: bool = False) -> int:
    """Drop ``user_id``'s cached lists (and, with ``refresh``, warm them again). Idempotent."""
    deleted = delete_user_cache(broker_redis(), int(user_id))
    log.info("invalidated %d cached lists of user %s", deleted, user_id)
    if refresh:
        refresh_user_recs.delay(int(user_id))
    return deleted


@shared_task(
    name="movierec.tasks.cache.drop_every_cached_list",
    autoretry_for=(redis.RedisError,), retry_backoff=True, retry_backoff_max=30, max_retries=10,
)
def drop_every_cached_list() -> int:
    """Drop every user's cached lists (and cached histories; the stale copies stay). Idempotent."""
    deleted = delete_matching(broker_redis(), keys.ALL_LISTS)
    log.info("dropped %d cached lists and histories", deleted)
    return deleted


def drop_cached_lists_after_publish(redis_url: str | None = None) -> int | None:
    """Drop every cached list now and once more ``PUBLISH_SETTLE_S`` later (a task), so that the
    next request of every user is answered by the version just published. ``redis_url``: the
    cache and broker (default: this worker's broker). How many keys went now; None when Redis
    could not be reached (the lists then expire with the cache TTL)."""
    from movierec.tasks.app import celery_app, make_celery

    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5) if redis_url else broker_redis()
        deleted = delete_matching(client, keys.ALL_LISTS)
        (make_celery(redis_url) if redis_url else celery_app).send_task(drop_every_cached_list.name, countdown=PUBLISH_SETTLE_S)
    except (redis.RedisError, BrokerError, OSError) as exc:  # the broker is this Redis: the task could not go either
        log.warning("cached lists not dropped after the publish: %s", exc)
        return None
    return deleted


@shared_task(
    name="movierec.tasks.cache.refresh_user_recs",
    autoretry_for=(httpx.TransportError,), retry_backoff=True, retry_backoff_max=30, max_retries=5,
)
def refresh_user_recs(user_id: int, k: int = 20) -> int:
    """Ask the gateway for ``user_id``'s default list, which puts a fresh one in the cache.

    Returns the number of movies in the new list. A 4xx (for example an unknown user) is not
    retried: it will not get better.
    """
    url = get_settings().gateway_url.rstrip("/") + "/v1/recommendations"
    response = httpx.post(url, json={"user_id": int(user_id), "k": k}, timeout=10.0)
    if response.status_code >= 500:
        raise httpx.TransportError(f"gateway answered {response.status_code}")
    if response.status_code >= 400:
        log.warning("refresh of user %s refused by the gateway: %s", user_id, response.text[:200])
        return 0
    return len(response.json().get("items", []))
