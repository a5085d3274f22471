"""Request context as a pure ASGI middleware: request id, metrics, one log line per request.

Pure ASGI rather than Starlette's ``BaseHTTPMiddleware``: the latter runs every request through
an extra task and memory stream, which profiling showed as most of the cache-hit path's time.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from prometheus_client import Counter, Histogram

from movierec_service.logs import request_id_var

log = logging.getLogger("movierec.service")
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def error_body(code: str, message: str, details: list | None = None) -> dict:
    body = {"error": {"code": code, "message": message, "request_id": request_id_var.get()}}
    if details:
        body["error"]["details"] = details
    return body


class RequestContextMiddleware:
    def __init__(self, app, *, service: str, requests_total: Counter, latency: Histogram):
        self.app = app
        self.service = service
        self.requests_total = requests_total
        self.latency = latency
        # (method, route, status) -> (counter child, histogram child): labels() looked up once
        self._children: dict[tuple[str, str, str], tuple] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None) or uuid.uuid4().hex
        rid = rid[:64]
        token = request_id_var.set(rid)
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # unexpected: logged with the request id, answered as 500, never a trace
            log.exception("unhandled error")
            if not started:
                body = json.dumps(error_body("internal", "internal error; quote the request id when reporting it")).encode()
                await send_with_id({"type": "http.response.start", "status": 500,
                                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            children = self._children.get((method, route, status))
            if children is None:
                children = (self.requests_total.labels(self.service, method, route, str(status)), self.latency.labels(self.service, method, route))
                self._children[(method, route, status)] = children
            children[0].inc()
            children[1].observe(elapsed)
            if route not in QUIET_ROUTES:
                log.info("request", extra={"method": method, "path": scope["path"], "status": status,
                                           "duration_ms": round(elapsed * 1000, 2)})
            request_id_var.reset(token)
