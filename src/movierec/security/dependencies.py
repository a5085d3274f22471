"""FastAPI dependencies over the security library, for the gateway (or any service).

    access = AccessControl(get_security_settings(), redis_url=..., registry=app.state.metrics_registry)
    access.install(app)                     # rate limit every route declared after this line
    @app.post("/v1/feedback")
    async def post_feedback(event: FeedbackEvent, caller: Principal | None = Depends(access.caller)):
        access.require_user(caller, event.user_id)
    app.delete("/v1/users/{user_id}", dependencies=[Depends(access.own_user)])
    router = APIRouter(dependencies=[Depends(access.admin)])
    app.post("/v1/recommendations", dependencies=[Depends(access.reader)])

Refusals become the services' usual error body (``movierec_service.ServiceError``): 401 missing,
wrong or expired credential, 403 another user's data or admin only, 429 with ``Retry-After``.
"""

# no `from __future__ import annotations`: FastAPI must see the closures in Annotated[...] at definition time

from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, Header, Request
from prometheus_client import CollectorRegistry, Counter

from movierec.security.access import Authenticator, Principal
from movierec.security.errors import AccessError
from movierec.security.rate_limit import RateDecision, RedisRateLimiter
from movierec.security.settings import SecuritySettings
from movierec_service import ServiceError


def _as_service_error(exc: AccessError) -> ServiceError:
    return ServiceError(exc.message, status=exc.status, code=exc.code, headers=exc.headers)


class AccessControl:
    def __init__(self, settings: SecuritySettings, *, redis_url: str | None = None, registry: CollectorRegistry | None = None,
                 redis_timeout_s: float = 0.25):
        self.settings = settings
        self.authenticator = Authenticator(settings)
        self.limiter = None
        if redis_url:
            client = aioredis.Redis.from_url(redis_url, socket_timeout=redis_timeout_s, socket_connect_timeout=redis_timeout_s)
            self.limiter = RedisRateLimiter(client, rate_per_s=settings.rate_limit_per_s, burst=settings.rate_limit_burst)
        self.refusals = Counter("movierec_access_refusals_total", "Requests refused by access control", ["code"],
                                registry=registry) if registry is not None else None

        async def caller(
            request: Request,
            authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
            x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
        ) -> Principal | None:
            """The authenticated caller, or None when no credential was sent."""
            principal = self._guard(lambda: self.authenticator.authenticate(authorization, x_api_key))
            request.state.principal = principal
            return principal

        async def own_user(user_id: int, principal: Annotated[Principal | None, Depends(caller)]) -> Principal | None:
            """For routes with a ``{user_id}`` path parameter: only that user (or an admin)."""
            return self.require_user(principal, user_id)

        async def admin(principal: Annotated[Principal | None, Depends(caller)]) -> Principal | None:
            if principal is None and self.settings.admin_open:
                return None
            return self._guard(lambda: self.authenticator.require_admin(principal))

        async def reader(principal: Annotated[Principal | None, Depends(caller)]) -> Principal | None:
            """Public reads, or keyed ones when ``MOVIEREC_READ_ACCESS=keyed``."""
            if not self._may_read(principal):
                self._guard(lambda: self.authenticator.require_user(None, 0))
            return principal

        async def rate_limit(request: Request) -> None:
            if self.limiter is None:
                return
            self.refuse_if_limited(await self.limiter.check(self.client_id(request)))

        self.caller = caller
        self.own_user = own_user
        self.admin = admin
        self.reader = reader
        self.rate_limit = rate_limit

    def install(self, app: FastAPI) -> None:
        """Rate-limit every route declared on ``app`` from now on (health and metrics routes,
        declared before, stay unlimited)."""
        app.router.dependencies.append(Depends(self.rate_limit))

    def client_id(self, request: Request) -> str:
        """Rate-limit key: the credential's user when one verifies, else the client address."""
        try:
            principal = self.authenticator.authenticate(request.headers.get("authorization"), request.headers.get("x-api-key"))
        except AccessError:
            principal = None
        return self._client_id(request, principal)

    def reader_client_id(self, request: Request) -> str | None:
        """For code that runs before the route's dependencies (the gateway's cache-hit shortcut):
        the rate-limit key when ``reader`` lets this caller read, None when it would ask for a
        credential. Raises ``AccessError`` for a credential that does not verify."""
        principal = self.authenticator.authenticate(request.headers.get("authorization"), request.headers.get("x-api-key"))
        return self._client_id(request, principal) if self._may_read(principal) else None

    def _may_read(self, principal: Principal | None) -> bool:
        """Reads are public, or need a credential when ``MOVIEREC_READ_ACCESS=keyed``."""
        return principal is not None or self.settings.read_access != "keyed"

    def _client_id(self, request: Request, principal: Principal | None) -> str:
        if principal is not None:
            return principal.client_id
        forwarded = request.headers.get("x-forwarded-for") if self.settings.trust_forwarded_for else None
        host = forwarded.split(",")[0].strip() if forwarded else (request.client.host if request.client else "unknown")
        return f"ip:{host}"

    def refuse_if_limited(self, decision: RateDecision) -> None:
        """429 with ``Retry-After`` when ``decision`` refuses the request (for a route that checks
        its limit itself, e.g. in one Redis round trip with its own reads: declared before ``install``)."""
        if not decision.allowed:
            self._count("rate_limited")
            seconds = max(1, int(decision.retry_after_s + 0.999))
            raise ServiceError(f"too many requests from this client: retry after {seconds} s", status=429,
                               code="rate_limited", headers={"Retry-After": str(seconds)})

    def require_user(self, principal: Principal | None, user_id: int) -> Principal | None:
        """Only ``user_id`` itself or an admin; anyone without a credential when writes are open
        (development), but a credential for another user is refused even then."""
        if principal is None and self.settings.writes_open:
            return None
        return self._guard(lambda: self.authenticator.require_user(principal, user_id))

    def _guard(self, check):
        try:
            return check()
        except AccessError as exc:
            self._count(exc.code)
            raise _as_service_error(exc) from None

    def _count(self, code: str) -> None:
        if self.refusals is not None:
            self.refusals.labels(code).inc()
