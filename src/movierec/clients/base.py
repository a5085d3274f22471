"""``ServiceClient``: one httpx client per service with an explicit timeout, the caller's request
id forwarded on every call, and errors sorted into ``ServiceUnavailable`` / ``ServiceRejected``."""

from __future__ import annotations

from typing import Any, Callable

import httpx

from movierec.clients.errors import NotFound, ServiceRejected, ServiceTimeout, ServiceUnavailable

RequestIdSource = Callable[[], str | None]
JSON_CONTENT = {"Content-Type": "application/json"}
"""Headers of a body sent as ``content=model.model_dump_json()``: serialised once in pydantic-core,
not dumped to a dict first and encoded again by httpx's ``json=``."""


class ServiceClient:
    service = "service"

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        connect_timeout: float | None = None,
        request_id: RequestIdSource | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        """``timeout`` bounds each call end to end (seconds); ``request_id`` returns the id to send
        as ``X-Request-ID``; ``transport`` lets tests use ``httpx.ASGITransport``."""
        self.base_url = base_url.rstrip("/")
        self._request_id = request_id
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, connect_timeout or timeout)),
            transport=transport,
        )

    async def request(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        rid = self._request_id() if self._request_id else None
        if rid and rid != "-":
            headers["X-Request-ID"] = rid
        extra = {"timeout": timeout} if timeout is not None else {}
        try:
            response = await self._http.request(method, path, headers=headers, **extra, **kwargs)
        except httpx.TimeoutException as exc:
            raise ServiceTimeout(self.service, f"no answer from {self.base_url}{path} in time ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(self.service, f"{self.base_url}{path} unreachable ({type(exc).__name__}: {exc})") from None
        if response.status_code >= 500:
            raise ServiceUnavailable(self.service, f"{self.base_url}{path} answered {response.status_code}")
        if response.status_code >= 400:
            raise _rejection(self.service, response)
        return response

    async def ready(self) -> str | None:
        """None when the service's /readyz says ready, else why not."""
        try:
            await self.request("GET", "/readyz")
        except (ServiceUnavailable, ServiceRejected) as exc:
            return exc.message
        return None

    async def aclose(self) -> None:
        await self._http.aclose()


def _rejection(service: str, response: httpx.Response) -> ServiceRejected:
    code, message, details = "rejected", response.text[:300], None
    try:
        error = response.json().get("error", {})
        code, message, details = error.get("code", code), error.get("message", message), error.get("details")
    except (ValueError, AttributeError):
        pass
    cls = NotFound if response.status_code == 404 else ServiceRejected
    return cls(service, response.status_code, code, message, details)
