"""``CacheHitShortcut``: answers a cached ``POST /v1/recommendations`` before FastAPI's routing.

A cache hit is most of a recommender's traffic, and on it FastAPI's routing, dependency solving
and exception layers cost more than the work itself (py-spy: about half of the hit path). This
pure ASGI layer, inside the request-context middleware (request id, metrics and the log line
still apply), reads the body, and when the request is a known user's and the caller's
credential verifies, makes the gateway's one Redis round trip (rate limit and cache read). A hit
is sent as the cache holds it. Everything else goes on to the FastAPI route with the body
replayed and the round trip's result in ``scope["state"]``, so nothing is asked twice:

- a miss, a refused rate limit (the route answers the 429), a new user's request;
- a body that does not validate, a credential that does not verify, a body that failed to
  arrive (too large, too slow): the route meets the same problem and answers the usual 4xx.

So the route stays the one definition of the endpoint (validation, errors, OpenAPI); this layer
only skips it when the answer is already known.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from pydantic import ValidationError

from movierec.contracts.recommendations import RecommendationRequest
from movierec.security.errors import AccessError
from movierec_gateway.cache import CacheLookup

PATH = "/v1/recommendations"
LOOKUP_STATE_KEY = "recommendation_lookup"
"""``scope["state"]`` key (``request.state.recommendation_lookup`` in the route): the
shortcut's ``CacheLookup`` for this request, handed to the route on a miss."""

Lookup = Callable[[RecommendationRequest, dict], Awaitable[CacheLookup | None]]
"""``(request, scope) -> lookup``, or None when this request cannot take the shortcut (raises
``AccessError`` for a credential that does not verify)."""


class _Route:
    """What ``scope["route"]`` holds for a request answered here (metrics label it by path)."""

    path = PATH


class CacheHitShortcut:
    def __init__(self, app, *, lookup: Lookup, on_hit: Callable[[], None]):
        self.app = app
        self.lookup = lookup
        self.on_hit = on_hit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" or not _sends_json(scope):
            return await self.app(scope, receive, send)
        messages: list[dict] = []
        try:
            body = await _read_body(receive, messages)
        except Exception as exc:  # too large or too slow: the route meets the same error and answers it
            return await self.app(scope, _raising(exc), send)
        if body is None:  # the client went away before the body was whole
            return await self.app(scope, _replay(messages, receive), send)
        found = await self._lookup(body, scope)
        if found is not None and found.answer is not None and (found.rate is None or found.rate.allowed):
            self.on_hit()
            scope["route"] = _Route
            payload = found.answer
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return
        if found is not None:
            scope.setdefault("state", {})[LOOKUP_STATE_KEY] = found
        await self.app(scope, _replay(messages, receive), send)

    async def _lookup(self, body: bytes, scope) -> CacheLookup | None:
        try:
            request = RecommendationRequest.model_validate_json(body)
        except ValidationError:
            return None
        if request.user_id is None:
            return None
        try:
            return await self.lookup(request, scope)
        except AccessError:
            return None


def _sends_json(scope) -> bool:
    return any(name == b"content-type" and value.startswith(b"application/json") for name, value in scope["headers"])


async def _read_body(receive, messages: list[dict]) -> bytes | None:
    """The whole body (None when the client disconnected first); ``messages`` keeps what came."""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None
        if not message.get("more_body", False):
            return b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[dict], receive):
    """``receive`` for the route: the messages already read, then the connection's own."""
    pending = list(messages)

    async def replay():
        return pending.pop(0) if pending else await receive()

    return replay


def _raising(exc: Exception):
    async def receive():
        raise exc

    return receive
