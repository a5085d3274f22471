"""The gateway's cache-hit shortcut as an ASGI layer: a hit is answered without the route; every
other request reaches the route with its body intact and the shortcut's Redis answer attached,
so nothing is asked twice. (Over real Redis and the real route: tests/serving/test_gateway.py.)"""

from __future__ import annotations

import asyncio
import json

import pytest

from movierec.contracts.recommendations import RecommendationRequest
from movierec.security.errors import InvalidCredential
from movierec.security.rate_limit import RateDecision
from movierec_gateway.cache import CacheLookup
from movierec_gateway.cache_hit import LOOKUP_STATE_KEY, PATH, CacheHitShortcut

CACHED = b'{"user_id": 7, "items": [], "cached": true}'


class Route:
    """The inner app: records what it was given and answers 299."""

    def __init__(self):
        self.calls: list[tuple[dict, bytes]] = []

    async def __call__(self, scope, receive, send):
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.calls.append((scope, b"".join(chunks)))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"route"})


def run(layer, body: bytes | list[bytes], *, path=PATH, method="POST", content_type=b"application/json", receive=None):
    parts = body if isinstance(body, list) else [body]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    sent: list[dict] = []
    scope = {"type": "http", "method": method, "path": path, "headers": [(b"content-type", content_type)] if content_type else []}

    async def default_receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    asyncio.run(layer(scope, receive or default_receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def shortcut(found: CacheLookup | None = None, error: Exception | None = None):
    route, asked, hits = Route(), [], []

    async def lookup(request, scope):
        asked.append(request)
        if error is not None:
            raise error
        return found

    return CacheHitShortcut(route, lookup=lookup, on_hit=lambda: hits.append(1)), route, asked, hits


def test_a_hit_is_answered_without_the_route():
    layer, route, asked, hits = shortcut(CacheLookup("d", CACHED, None, RateDecision(True, 0.0, 5.0)))
    status, body = run(layer, [b'{"user_id": 7,', b' "k": 5}'])  # a body in two parts
    assert (status, body) == (200, CACHED) and route.calls == [] and hits == [1]
    assert asked[0].user_id == 7 and asked[0].k == 5


@pytest.mark.parametrize("found", [
    CacheLookup("d", None, [{"kind": "click"}], None),  # a miss
    CacheLookup("d", CACHED, None, RateDecision(False, 3.0, 0.0)),  # cached, but over the rate limit: the route answers 429
])
def test_the_route_gets_the_body_and_the_lookup_already_made(found):
    layer, route, asked, hits = shortcut(found)
    raw = json.dumps({"user_id": 7, "k": 3}).encode()
    status, body = run(layer, raw)
    assert (status, body) == (299, b"route") and hits == [] and len(asked) == 1
    scope, seen = route.calls[0]
    assert seen == raw and scope["state"][LOOKUP_STATE_KEY] is found


@pytest.mark.parametrize("raw", [
    b'{"user_id": "seven"}',  # invalid: the route answers the 422
    b'{"liked_movie_ids": [1, 2]}',  # a new user: nothing to look up
    b"not json",
])
def test_requests_without_a_known_user_go_to_the_route_unasked(raw):
    layer, route, asked, _ = shortcut(CacheLookup("d", CACHED, None, None))
    assert run(layer, raw) == (299, b"route")
    assert asked == [] and route.calls[0][1] == raw and LOOKUP_STATE_KEY not in route.calls[0][0].get("state", {})


def test_a_credential_that_does_not_verify_goes_to_the_route():
    layer, route, asked, _ = shortcut(error=InvalidCredential("API key refused"))
    assert run(layer, b'{"user_id": 7}') == (299, b"route") and len(asked) == 1
    assert LOOKUP_STATE_KEY not in route.calls[0][0].get("state", {})


@pytest.mark.parametrize("where", [
    {"path": "/v1/movies"}, {"method": "GET"}, {"content_type": b"text/plain"}, {"content_type": None},
])
def test_other_routes_and_non_json_bodies_pass_untouched(where):
    layer, route, asked, _ = shortcut(CacheLookup("d", CACHED, None, None))
    assert run(layer, b'{"user_id": 7}', **where) == (299, b"route") and asked == []


def test_a_body_that_fails_to_arrive_fails_again_in_the_route():
    class TooSlow(Exception):
        pass

    async def receive():
        raise TooSlow()

    layer, route, asked, _ = shortcut(CacheLookup("d", CACHED, None, None))
    with pytest.raises(TooSlow):  # raised where FastAPI reads the body, which answers it (408 or 413)
        run(layer, b"", receive=receive)
    assert asked == []


def test_a_client_gone_before_the_body_reaches_the_route_as_a_disconnect():
    messages = [{"type": "http.request", "body": b'{"user_id"', "more_body": True}, {"type": "http.disconnect"}]
    seen: list[dict] = []

    async def route(scope, receive, send):
        seen.extend([await receive(), await receive()])

    async def receive():
        return messages.pop(0)

    async def lookup(request, scope):
        raise AssertionError("nothing to look up")

    async def send(message):
        pass

    layer = CacheHitShortcut(route, lookup=lookup, on_hit=lambda: None)
    asyncio.run(layer({"type": "http", "method": "POST", "path": PATH, "headers": [(b"content-type", b"application/json")]}, receive, send))
    assert [m["type"] for m in seen] == ["http.request", "http.disconnect"]


# --- inside a service app: the body limits answer as they do without the shortcut -----------------


def _service(received: list):
    from starlette.middleware import Middleware

    from movierec_service import create_service_app

    async def never_cached(request, scope):
        return CacheLookup("d", None, None, None)

    app = create_service_app("shortcut-test", max_body_bytes=1000, body_timeout_s=0.5,
                             inner_middleware=[Middleware(CacheHitShortcut, lookup=never_cached, on_hit=lambda: None)])

    @app.post(PATH)
    async def recommendations(body: RecommendationRequest):
        received.append(body)
        return {"user_id": body.user_id}

    return app


def _post(app, **kwargs):
    import httpx

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.post(PATH, headers={"content-type": "application/json"}, **kwargs)

    return asyncio.run(go())


def test_too_large_and_stalled_bodies_still_get_413_and_408():
    received: list = []
    app = _service(received)
    assert _post(app, content=b'{"user_id": 5}').json() == {"user_id": 5}  # a miss reaches the route, body intact
    declared = _post(app, content=b'{"user_id": 5, "exclude_movie_ids": [' + b"1," * 600 + b"1]}")

    async def chunks():
        yield b'{"user_id": 5, "exclude_movie_ids": ['
        for _ in range(100):
            yield b"1," * 20
        yield b"1]}"

    async def stalled():
        yield b'{"user_id": '
        await asyncio.sleep(2.0)
        yield b"5}"

    streamed, slow = _post(app, content=chunks()), _post(app, content=stalled())
    assert declared.status_code == 413 and streamed.status_code == 413
    assert slow.status_code == 408 and slow.json()["error"]["code"] == "body_timeout"
    assert len(received) == 1
