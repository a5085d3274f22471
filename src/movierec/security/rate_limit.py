"""Per-client rate limiting: a token bucket in Redis, so every gateway replica shares one budget.

The bucket lives in one Redis hash per client and is updated by a Lua script (atomic, and on
Redis' clock, so replicas with skewed clocks agree). When Redis is unreachable the request is let
through and counted as ``unlimited``: losing the limiter must not take recommendations down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import redis
import redis.asyncio as aioredis

from movierec.security.errors import RateLimited

log = logging.getLogger(__name__)

KEY_PREFIX = "ratelimit:"

_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
local reply = {allowed, tostring(retry), tostring(tokens)}
for i = 2, #KEYS do
  reply[#reply + 1] = redis.call('GET', KEYS[i])
end
return reply
"""
DECISION_FIELDS = 3
"""The script's reply: the decision's fields, then the value of each further key (nil: absent)."""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_s: float
    remaining: float
    limited_by_redis: bool = True
    """False when Redis could not be asked (the request was let through)."""


class RedisRateLimiter:
    def __init__(self, client: aioredis.Redis, *, rate_per_s: float, burst: int, prefix: str = KEY_PREFIX):
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.client = client
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.prefix = prefix
        self._script = client.register_script(_TOKEN_BUCKET)

    async def check(self, client_id: str, cost: float = 1.0) -> RateDecision:
        """Take ``cost`` tokens from ``client_id``'s bucket if it has them."""
        return (await self.check_and_get(client_id, (), cost))[0]

    async def check_and_get(self, client_id: str, keys: Sequence[str], cost: float = 1.0) -> tuple[RateDecision, list | None]:
        """``check``, and the values of ``keys`` (GET; None where absent) read in the same round
        trip, in one command. When Redis cannot be asked the request is let through and the
        values are None (not a list)."""
        try:
            reply = await self._script(keys=[self.prefix + client_id, *keys], args=[self.rate_per_s, self.burst, cost])
        except (redis.RedisError, OSError) as exc:
            return self.read_decision(exc), None
        return self.read_decision(reply[:DECISION_FIELDS]), reply[DECISION_FIELDS:]

    def read_decision(self, reply) -> RateDecision:
        """The decision from the script's reply; an exception (Redis trouble) lets the request through."""
        if isinstance(reply, BaseException):
            log.warning("rate limiter unavailable, letting the request through: %s", reply)
            return RateDecision(True, 0.0, float(self.burst), limited_by_redis=False)
        allowed, retry, remaining = reply
        return RateDecision(bool(int(allowed)), float(retry), float(remaining))

    async def enforce(self, client_id: str, cost: float = 1.0) -> RateDecision:
        """Like ``check``, but raises ``RateLimited`` (429 with Retry-After) when over the limit."""
        decision = await self.check(client_id, cost)
        if not decision.allowed:
            raise RateLimited(decision.retry_after_s)
        return decision
