"""Access control: every refusal (missing key, wrong key, forged or expired token, wrong user,
admin action without admin), the rate limiter's 429 with Retry-After on real Redis, and the
refusal of placeholder secrets outside development."""


import asyncio
import os
import uuid
from typing import Annotated

import httpx
import pytest
import redis
from fastapi import APIRouter, Depends

from movierec.security import (
    Authenticator,
    ExpiredCredential,
    Forbidden,
    InsecureSettings,
    InvalidCredential,
    MissingCredential,
    Principal,
    RedisRateLimiter,
    SecuritySettings,
    issue_user_token,
    user_api_key,
    verify_user_token,
)
from movierec.security.dependencies import AccessControl
from movierec_service import create_service_app

REDIS_URL = os.environ.get("MOVIEREC_TEST_REDIS_URL", "redis://127.0.0.1:6379") + "/11"
SECRET = "a-long-random-token-secret-for-tests-0123456789"
ADMIN_KEY = "a-long-random-admin-key-for-tests-9876543210"


def settings(**overrides) -> SecuritySettings:
    values = dict(env="production", token_secret=SECRET, admin_api_key=ADMIN_KEY, rate_limit_per_s=2.0, rate_limit_burst=3)
    values.update(overrides)
    return SecuritySettings(**values)


# --- tokens and keys ------------------------------------------------------------------------


def test_token_round_trip_and_every_tampering_is_refused():
    token = issue_user_token(42, SECRET, 60)
    claims = verify_user_token(token, SECRET)
    assert claims.user_id == 42 and not claims.admin
    payload, mac = token.split(".")
    with pytest.raises(InvalidCredential):
        verify_user_token(token, "another-secret-of-enough-length-000")  # signed with another secret
    forged = issue_user_token(43, "attacker-secret-of-enough-length-0000", 60).split(".")[0]
    with pytest.raises(InvalidCredential):
        verify_user_token(f"{forged}.{mac}", SECRET)  # user 43's payload under user 42's signature
    for garbage in ("", "x", "a.b.c", f"{payload}.", "!!!.???", "a" * 600):
        with pytest.raises(InvalidCredential):
            verify_user_token(garbage, SECRET)


def test_expired_token_is_refused():
    token = issue_user_token(7, SECRET, 10, now=1000.0)
    assert verify_user_token(token, SECRET, now=1009.0).user_id == 7
    with pytest.raises(ExpiredCredential):
        verify_user_token(token, SECRET, now=1010.0)


def test_api_key_is_bound_to_its_user():
    auth = Authenticator(settings())
    key = user_api_key(5, SECRET)
    assert auth.authenticate(None, key) == Principal(user_id=5, via="api_key")
    with pytest.raises(InvalidCredential):
        auth.authenticate(None, key.replace("mrk_5_", "mrk_6_"))  # the same mac claimed for user 6
    with pytest.raises(InvalidCredential):
        auth.authenticate(None, user_api_key(5, "another-secret-of-enough-length-000"))
    with pytest.raises(InvalidCredential):
        auth.authenticate(None, "not-a-key")
    assert auth.authenticate(None, ADMIN_KEY).admin
    assert auth.authenticate(None, None) is None


def test_user_and_admin_checks():
    auth = Authenticator(settings())
    alice = Principal(user_id=1)
    assert auth.require_user(alice, 1) is alice
    with pytest.raises(Forbidden, match="user 1 may not act on user 2"):
        auth.require_user(alice, 2)
    with pytest.raises(MissingCredential):
        auth.require_user(None, 1)
    with pytest.raises(Forbidden):
        auth.require_admin(alice)
    with pytest.raises(MissingCredential):
        auth.require_admin(None)
    admin = Principal(user_id=None, admin=True, via="admin_key")
    assert auth.require_admin(admin) is admin and auth.require_user(admin, 2) is admin


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["token_secret", "admin_api_key"])
@pytest.mark.parametrize("value", ["", "change-me", "secret", "dev-insecure-token-secret-change-me", "short-but-random"])
def test_placeholder_secrets_are_refused_outside_development(field, value):
    with pytest.raises(InsecureSettings, match=field.upper()):
        settings(**{field: value})


def test_defaults_work_in_development_only(monkeypatch):
    for name in ("MOVIEREC_TOKEN_SECRET", "MOVIEREC_ADMIN_API_KEY", "MOVIEREC_ENV"):
        monkeypatch.delenv(name, raising=False)
    assert SecuritySettings().is_development
    monkeypatch.setenv("MOVIEREC_ENV", "production")
    with pytest.raises(InsecureSettings, match="MOVIEREC_TOKEN_SECRET"):
        SecuritySettings()
    monkeypatch.setenv("MOVIEREC_TOKEN_SECRET", SECRET)
    monkeypatch.setenv("MOVIEREC_ADMIN_API_KEY", ADMIN_KEY)
    assert SecuritySettings().token_secret.get_secret_value() == SECRET


def test_same_secret_for_tokens_and_admin_is_refused():
    with pytest.raises(InsecureSettings, match="must differ"):
        settings(admin_api_key=SECRET)


# --- the FastAPI dependencies on a real app and real Redis ------------------------------------


def _app(access: AccessControl):
    app = create_service_app("access-test")
    access.install(app)
    admin = APIRouter(prefix="/v1/admin", dependencies=[Depends(access.admin)])

    @admin.post("/reload")
    async def reload():
        return {"reloaded": True}

    @app.post("/v1/users/{user_id}/events")
    async def write(user_id: int, caller: Annotated[Principal | None, Depends(access.caller)]):
        access.require_user(caller, user_id)
        return {"user_id": user_id}

    @app.delete("/v1/users/{user_id}", dependencies=[Depends(access.own_user)])
    async def delete(user_id: int):
        return {"deleted": user_id}

    @app.get("/v1/movies", dependencies=[Depends(access.reader)])
    async def movies():
        return {"items": []}

    app.include_router(admin)
    return app


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def test_every_refusal_over_http():
    s = settings(rate_limit_per_s=1000.0, rate_limit_burst=1000)
    access = AccessControl(s)  # no Redis: no rate limit in this test
    auth = access.authenticator
    alice_token, alice_key = auth.token_for(1), auth.api_key_for(1)
    expired = issue_user_token(1, SECRET, 1, now=0)

    async def run():
        async with _client(_app(access)) as c:
            cases = {
                "missing key": (await c.delete("/v1/users/1"), 401, "unauthenticated"),
                "wrong key": (await c.delete("/v1/users/1", headers={"X-API-Key": "mrk_1_" + "0" * 40}), 401, "invalid_credential"),
                "forged token": (await c.delete("/v1/users/1", headers={"Authorization": "Bearer " + alice_token[:-2] + "AA"}), 401, "invalid_credential"),
                "expired token": (await c.delete("/v1/users/1", headers={"Authorization": f"Bearer {expired}"}), 401, "expired_credential"),
                "wrong user (token)": (await c.delete("/v1/users/2", headers={"Authorization": f"Bearer {alice_token}"}), 403, "forbidden"),
                "wrong user (key, write)": (await c.post("/v1/users/2/events", headers={"X-API-Key": alice_key}), 403, "forbidden"),
                "admin without admin": (await c.post("/v1/admin/reload", headers={"X-API-Key": alice_key}), 403, "forbidden"),
                "admin with no credential": (await c.post("/v1/admin/reload"), 401, "unauthenticated"),
                "admin with wrong key": (await c.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY + "x"}), 401, "invalid_credential"),
            }
            for name, (response, status, code) in cases.items():
                assert response.status_code == status, (name, response.text)
                assert response.json()["error"]["code"] == code, name
            # and the allowed ones
            assert (await c.delete("/v1/users/1", headers={"Authorization": f"Bearer {alice_token}"})).json() == {"deleted": 1}
            assert (await c.post("/v1/users/1/events", headers={"X-API-Key": alice_key})).status_code == 200
            assert (await c.post("/v1/admin/reload", headers={"X-API-Key": ADMIN_KEY})).json() == {"reloaded": True}
            assert (await c.get("/v1/movies")).status_code == 200  # public reads by default

    asyncio.run(run())


def test_keyed_reads():
    access = AccessControl(settings(read_access="keyed"))

    async def run():
        async with _client(_app(access)) as c:
            assert (await c.get("/v1/movies")).status_code == 401
            assert (await c.get("/v1/movies", headers={"X-API-Key": access.authenticator.api_key_for(3)})).status_code == 200

    asyncio.run(run())


@pytest.mark.integration
def test_rate_limit_answers_429_with_retry_after_per_client():
    redis.Redis.from_url(REDIS_URL).ping()
    # one token per 10 s: the requests below need not come within a second or two of each other on a slow machine
    access = AccessControl(settings(rate_limit_per_s=0.1, rate_limit_burst=3), redis_url=REDIS_URL)
    access.limiter.prefix = f"ratelimit-test-{uuid.uuid4().hex}:"
    alice_key, bob_key = access.authenticator.api_key_for(1), access.authenticator.api_key_for(2)

    async def run():
        async with _client(_app(access)) as c:
            statuses = [(await c.get("/v1/movies", headers={"X-API-Key": alice_key})).status_code for _ in range(5)]
            assert statuses == [200, 200, 200, 429, 429]
            limited = await c.get("/v1/movies", headers={"X-API-Key": alice_key})
            assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
            assert 5 <= int(limited.headers["Retry-After"]) <= 10  # the next token, up to 10 s away
            assert (await c.get("/v1/movies", headers={"X-API-Key": bob_key})).status_code == 200  # another client
            assert (await c.get("/healthz")).status_code == 200  # health is never limited
            await access.limiter.client.aclose()

    asyncio.run(run())


@pytest.mark.integration
def test_limiter_is_shared_between_replicas_and_lets_requests_through_without_redis():
    prefix = f"ratelimit-test-{uuid.uuid4().hex}:"

    async def run():
        import redis.asyncio as aioredis

        replicas = [RedisRateLimiter(aioredis.Redis.from_url(REDIS_URL), rate_per_s=0.1, burst=4, prefix=prefix) for _ in range(2)]
        decisions = [await replicas[i % 2].check("ip:10.0.0.1") for i in range(6)]
        assert [d.allowed for d in decisions] == [True] * 4 + [False] * 2  # one budget across both
        assert decisions[-1].retry_after_s > 5
        down = RedisRateLimiter(aioredis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2), rate_per_s=1, burst=1)
        decision = await down.check("ip:10.0.0.1")
        assert decision.allowed and not decision.limited_by_redis
        for r in replicas:
            await r.client.aclose()

    asyncio.run(run())


@pytest.mark.integration
def test_check_and_get_reads_keys_in_the_same_command():
    """The gateway's cache read shares the limiter's one round trip (one EVALSHA)."""
    prefix = f"ratelimit-test-{uuid.uuid4().hex}:"
    key = f"{prefix}value"
    redis.Redis.from_url(REDIS_URL).set(key, b"cached body", ex=60)

    async def run():
        import redis.asyncio as aioredis

        limiter = RedisRateLimiter(aioredis.Redis.from_url(REDIS_URL), rate_per_s=0.1, burst=2, prefix=prefix)
        replies = [await limiter.check_and_get("ip:10.0.0.2", [key, f"{prefix}absent"]) for _ in range(3)]
        assert [d.allowed for d, _ in replies] == [True, True, False]
        assert all(values == [b"cached body", None] for _, values in replies)  # read even when refused
        down = RedisRateLimiter(aioredis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2), rate_per_s=1, burst=1)
        decision, values = await down.check_and_get("ip:10.0.0.2", [key])
        assert decision.allowed and not decision.limited_by_redis and values is None
        await limiter.client.aclose()

    asyncio.run(run())


def test_compose_publishes_only_the_gateway():
    from movierec.reliability.access_probe import compose_publishes_only_the_gateway
    from movierec.settings import REPO_ROOT

    result = compose_publishes_only_the_gateway(REPO_ROOT / "docker-compose.yml")
    assert result.passed, result.detail


def test_open_writes_only_in_development_and_still_check_credentials():
    with pytest.raises(InsecureSettings, match="WRITE_ACCESS"):
        settings(write_access="open")
    access = AccessControl(SecuritySettings(env="development", write_access="open", admin_api_key=ADMIN_KEY))
    alice_token = access.authenticator.token_for(1)

    async def run():
        async with _client(_app(access)) as c:
            assert (await c.delete("/v1/users/2")).status_code == 200  # no credential: allowed in the demo
            assert (await c.delete("/v1/users/2", headers={"Authorization": f"Bearer {alice_token}"})).status_code == 403
            assert (await c.post("/v1/admin/reload")).status_code == 401  # admin never opens

    asyncio.run(run())


def test_development_defaults_open_the_demo_and_production_closes_it(monkeypatch):
    for name in ("MOVIEREC_TOKEN_SECRET", "MOVIEREC_ADMIN_API_KEY", "MOVIEREC_ENV", "MOVIEREC_WRITE_ACCESS"):
        monkeypatch.delenv(name, raising=False)
    dev = SecuritySettings()
    assert dev.writes_open and dev.admin_open
    assert not SecuritySettings(write_access="keyed").writes_open
    assert not SecuritySettings(admin_api_key=ADMIN_KEY).admin_open  # a configured admin key is always required
    prod = settings()
    assert not prod.writes_open and not prod.admin_open
