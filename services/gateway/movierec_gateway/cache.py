"""The per-user recommendation cache in Redis.

Keys (their format is ``movierec.storage.recs_cache_keys``, shared with ``movierec.tasks.cache``,
which invalidates by deleting the user's ``recs:`` keys after each feedback event and every
user's after a new policy version is published):

- ``recs:{user_id}:{request_hash}``: the fresh list for one (k, filters, excludes) combination,
  ``cache_ttl_s``, stored as the exact JSON body a hit answers (``"cached": true``), so a hit
  sends it as it is, without parsing, validating or serialising it again;
- ``recs:{user_id}:history``: the user's feedback events as the feedback service answered them
  (JSON list), ``cache_ttl_s``: a miss reads it in the same round trip as its list, so a user's
  next miss skips the feedback hop;
- ``recs_stale:{user_id}:{request_hash}``: the same list kept ``stale_ttl_s`` and NOT removed by
  invalidation: read only when the ranker is down (served marked degraded), deleted with the
  user's data;
- ``decisions`` (stream; the ``MOVIEREC_DECISION_LOG_KEY`` setting): the decision log,
  ``movierec.storage.decisions``; a miss appends its decision in the same round trip as its list;
- ``movies:added`` (hash movie_id -> JSON): movies added through the admin route, so every
  gateway replica knows them.

Redis trouble never fails a request: every call is bounded by a short timeout, errors are
counted and read as a cache miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

from movierec.contracts.decisions import ServedDecision
from movierec.security.rate_limit import RateDecision, RedisRateLimiter
from movierec.storage import recs_cache_keys as keys
from movierec.storage.decisions import DEFAULT_MAX_LEN, decision_entry, user_entry_ids

log = logging.getLogger("movierec.gateway.cache")

ADDED_MOVIES_KEY = "movies:added"


@dataclass(frozen=True)
class RateCheck:
    """The caller's rate-limit check, made in the same Redis round trip as the cache read."""

    limiter: RedisRateLimiter
    client_id: str


@dataclass(frozen=True)
class CacheLookup:
    digest: str
    """The request's hash (``request_hash``), its key in the cache."""
    answer: bytes | None
    """The cached answer's JSON body (a hit), or None."""
    history: list[dict] | None
    """The user's cached feedback events, or None when not cached."""
    rate: RateDecision | None = None
    """The rate limiter's decision when a ``RateCheck`` was given."""


def request_hash(request: BaseModel) -> str:
    """The request without its user, hashed: pydantic writes fields in their declared order, so
    equal requests give equal text."""
    return hashlib.sha1(request.model_dump_json(exclude={"user_id"}).encode()).hexdigest()[:16]


class RecommendationCache:
    def __init__(self, url: str, *, ttl_s: int, stale_ttl_s: int, timeout_s: float, registry: CollectorRegistry,
                 decision_log_key: str, decision_log_max: int = DEFAULT_MAX_LEN):
        self.redis = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self.ttl_s = ttl_s
        self.stale_ttl_s = stale_ttl_s
        self.decision_log_key = decision_log_key
        self.decision_log_max = decision_log_max
        self.requests = Counter("movierec_gateway_cache_requests_total", "Recommendation cache lookups", ["result"], registry=registry)
        self.errors = Counter("movierec_gateway_cache_errors_total", "Redis calls that failed (read as a miss)", ["op"], registry=registry)
        # label lookups resolved once: they were a visible share of the hit path
        self._hits, self._misses, self._errors_read = (self.requests.labels(r) for r in ("hit", "miss", "error"))

    async def lookup(self, user_id: int, digest: str, rate: RateCheck | None = None) -> CacheLookup:
        """The cached answer, the user's cached history and (with ``rate``) the rate limiter's
        decision, in one round trip (one command: with ``rate`` the keys are read by the limiter's
        script, on the limiter's connection, so both must use this cache's Redis, as the gateway
        builds them). A Redis error reads as nothing cached and lets the request through."""
        wanted = (keys.list_key(user_id, digest), keys.history_key(user_id))
        if rate is not None:
            decision, values = await rate.limiter.check_and_get(rate.client_id, wanted)
            if values is None:
                self.errors.labels("get").inc()
        else:
            decision, values = None, await self._call("get", self.redis.mget(*wanted))
        if values is None or values is _FAILED:
            self._errors_read.inc()
            return CacheLookup(digest, None, None, decision)
        answer, history = values
        (self._hits if answer else self._misses).inc()
        return CacheLookup(digest, answer or None, json.loads(history) if history and not answer else None, decision)

    async def get_stale(self, user_id: int, digest: str) -> dict | None:
        raw = await self._call("get_stale", self.redis.get(keys.stale_key(user_id, digest)))
        return json.loads(raw) if raw and raw is not _FAILED else None

    async def put(self, user_id: int, digest: str, response: BaseModel, *, history: list[dict] | None = None,
                  decision: ServedDecision | None = None) -> None:
        """Keep ``response`` as the body a later hit answers (the same list with ``cached``
        true), the user's ``history`` when it was just read from the feedback service, and log
        the policy's ``decision``."""
        text = response.model_copy(update={"cached": True}).model_dump_json()
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(keys.list_key(user_id, digest), text, ex=self.ttl_s)
        pipe.set(keys.stale_key(user_id, digest), text, ex=self.stale_ttl_s)
        if history is not None:
            pipe.set(keys.history_key(user_id), json.dumps(history), ex=self.ttl_s)
        if decision is not None:
            pipe.xadd(self.decision_log_key, decision_entry(decision), maxlen=self.decision_log_max, approximate=True)
        await self._call("put", pipe.execute())

    async def forget_user(self, user_id: int, *, stale_too: bool) -> int:
        """Delete the user's cached lists (and their stale copies with ``stale_too``)."""
        patterns = [keys.user_lists(user_id)] + ([keys.user_stale_lists(user_id)] if stale_too else [])

        async def run() -> int:
            found = [k for p in patterns async for k in self.redis.scan_iter(match=p, count=500)]
            return await self.redis.delete(*found) if found else 0

        deleted = await self._call("forget", run())
        return 0 if deleted is _FAILED else int(deleted)

    async def forget_user_decisions(self, user_id: int, page: int = 2000) -> int:
        """Delete the user's decisions from the decision log (a scan of the stream, made only when a
        user's data is deleted)."""

        async def run() -> int:
            deleted, start = 0, "-"
            while True:
                entries = await self.redis.xrange(self.decision_log_key, min=start, count=page)
                if not entries:
                    return deleted
                ids = user_entry_ids(entries, user_id)
                if ids:
                    deleted += await self.redis.xdel(self.decision_log_key, *ids)
                last = entries[-1][0]
                start = "(" + (last.decode() if isinstance(last, bytes) else last)

        deleted = await self._call("forget_decisions", run())
        return 0 if deleted is _FAILED else int(deleted)

    async def added_movies(self) -> dict[int, dict]:
        raw = await self._call("added_movies", self.redis.hgetall(ADDED_MOVIES_KEY))
        return {} if raw is _FAILED else {int(k): json.loads(v) for k, v in raw.items()}

    async def remember_added_movie(self, movie_id: int, body: dict) -> None:
        await self._call("remember_added", self.redis.hset(ADDED_MOVIES_KEY, str(movie_id), json.dumps(body)))

    async def ping(self) -> str | None:
        result = await self._call("ping", self.redis.ping())
        return "Redis unreachable" if result is _FAILED else None

    async def _call(self, op: str, awaitable):
        try:
            return await awaitable
        except (aioredis.RedisError, OSError) as exc:
            self.errors.labels(op).inc()
            log.warning("redis %s failed: %s", op, exc)
            return _FAILED

    async def aclose(self) -> None:
        await self.redis.aclose()


_FAILED = object()
