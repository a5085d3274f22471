"""Access refusals against the live gateway: each credential that must be refused, and the rate
limit. A case that is not refused is a leak."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import yaml

from movierec.reliability.report import CaseResult
from movierec.security import Authenticator, SecuritySettings, issue_user_token


def run_access_probes(gateway_url: str, settings: SecuritySettings | None = None) -> list[CaseResult]:
    settings = settings or SecuritySettings()
    auth = Authenticator(settings)
    secret = settings.token_secret.get_secret_value()
    alice_token, alice_key = auth.token_for(1), auth.api_key_for(1)
    expired = issue_user_token(1, secret, 1, now=0)

    def event(user_id: int) -> dict:
        return {"event_id": f"acc-{uuid.uuid4().hex[:12]}", "user_id": user_id, "movie_id": 1, "kind": "click"}

    bearer = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
    probes = [
        ("feedback with no credential", "POST", "/v1/feedback", {"json": event(1)}, 401),
        ("feedback with a wrong API key", "POST", "/v1/feedback", {"json": event(1), "headers": {"X-API-Key": "mrk_1_" + "0" * 40}}, 401),
        ("feedback with a forged token", "POST", "/v1/feedback", {"json": event(1), "headers": bearer(alice_token[:-3] + "AAA")}, 401),
        ("feedback with an expired token", "POST", "/v1/feedback", {"json": event(1), "headers": bearer(expired)}, 401),
        ("feedback for another user (token of user 1, event of user 2)", "POST", "/v1/feedback",
         {"json": event(2), "headers": bearer(alice_token)}, 403),
        ("delete another user's data (key of user 1)", "DELETE", "/v1/users/2", {"headers": {"X-API-Key": alice_key}}, 403),
        ("delete a user's data with no credential", "DELETE", "/v1/users/2", {}, 401),
        ("admin: add a movie with no credential", "POST", "/v1/admin/movies", {"data": {"title": "Probe"}}, 401),
        ("admin: add a movie with a user's key", "POST", "/v1/admin/movies", {"data": {"title": "Probe"}, "headers": {"X-API-Key": alice_key}}, 403),
        ("admin: add a movie with a wrong admin key", "POST", "/v1/admin/movies",
         {"data": {"title": "Probe"}, "headers": {"X-API-Key": "not-the-admin-key"}}, 401),
    ]
    results = []
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        for name, method, path, kwargs, expected in probes:
            response = client.request(method, path, **kwargs)
            ok = response.status_code == expected
            results.append(CaseResult(name, str(expected), response.status_code, ok, "" if ok else f"not refused: {response.text[:120]}"))
    statuses, retry_after = _burst(gateway_url, 3 * settings.rate_limit_burst, {"X-API-Key": auth.api_key_for(3)})
    limited = 429 in statuses and retry_after is not None
    results.append(CaseResult(f"rate limit ({settings.rate_limit_burst} burst, {settings.rate_limit_per_s:g}/s per client)",
                              "429 with Retry-After", 429 if limited else statuses[-1], limited,
                              f"{statuses.count(429)} of {len(statuses)} concurrent requests limited, Retry-After {retry_after}"
                              if limited else "never limited"))
    return results


def _burst(gateway_url: str, n: int, headers: dict) -> tuple[list[int], str | None]:
    """``n`` concurrent requests from one client; their statuses and a Retry-After seen."""
    import asyncio

    async def run():
        async with httpx.AsyncClient(base_url=gateway_url, timeout=30, limits=httpx.Limits(max_connections=32)) as client:
            return await asyncio.gather(*[client.get("/v1/genres", headers=headers) for _ in range(n)])

    responses = asyncio.run(run())
    retry = next((r.headers.get("Retry-After") for r in responses if r.status_code == 429), None)
    return [r.status_code for r in responses], retry


def compose_publishes_only_the_gateway(compose_file: Path) -> CaseResult:
    """Internal services must not be reachable from outside: only the gateway publishes a port."""
    services = (yaml.safe_load(compose_file.read_text()) or {}).get("services", {})
    published = sorted(name for name, spec in services.items() if (spec or {}).get("ports"))
    ok = published == ["gateway"]
    return CaseResult("compose: only the gateway's port is published", "gateway only", None, ok,
                      "" if ok else f"published: {', '.join(published) or 'none'}")
