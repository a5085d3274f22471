"""``create_service_app``: a FastAPI app with the plumbing every service needs.

- ``X-Request-ID``: taken from the request (the gateway forwards it) or made, echoed back, and
  put on every log line.
- ``/healthz`` (the process is up), ``/readyz`` (every readiness check passes: real
  dependencies), ``/metrics`` (Prometheus text).
- Errors: ``ServiceError`` subclasses carry an HTTP status and a code; validation errors become
  422 naming the field; anything unexpected is a 500 with the request id, never a stack trace.
"""

from __future__ import annotations

from typing import Awaitable, Callable, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.middleware import Middleware
from starlette.exceptions import HTTPException as StarletteHTTPException
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from movierec_service.body_limit import DEFAULT_BODY_TIMEOUT_S, DEFAULT_MAX_BODY_BYTES, BodyTimeoutMiddleware
from movierec_service.logs import configure_logging
from movierec_service.request_context import RequestContextMiddleware, error_body

NO_OPENTELEMETRY = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's OpenTelemetry hooks, off: the services report through Prometheus (``/metrics``) and
JSON logs, and with the hooks on FastAPI looks for OpenTelemetry providers on every request
(about 8% of a cache hit's CPU in an ad-hoc py-spy recording on 2026-11-23, not a repo command)."""

ReadinessCheck = Callable[[], Awaitable[str | None]]
"""Returns None when ready, else a sentence saying what is not ready."""



class ServiceError(Exception):
    """An error a client can act on. Subclasses set ``status`` and ``code``."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.status = status or self.status
        self.code = code or self.code
        self.headers = headers or {}


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 408: "body_timeout", 413: "body_too_large", 415: "unsupported_media_type"}


ERROR_BODY_SCHEMA = {
    "title": "ErrorBody", "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "request_id": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    }}},
}
"""What every error answer looks like; the OpenAPI documents it in place of FastAPI's default 422 body."""


def create_service_app(
    service: str,
    *,
    version: str = "0.1.0",
    readiness: list[ReadinessCheck] | None = None,
    log_level: str = "INFO",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    inner_middleware: Sequence[Middleware] = (),
) -> FastAPI:
    """``inner_middleware``: the service's own ASGI layers, innermost first, inside the request
    context and the body timeout (so they see the request id, and their answers are counted)."""
    configure_logging(service, log_level)
    app = FastAPI(title=f"movierec {service}", version=version, max_body_size=max_body_bytes, telemetry=NO_OPENTELEMETRY)
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    app.state.readiness = list(readiness or [])
    requests_total = Counter(
        "http_requests_total", "HTTP requests", ["service", "method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"], registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    )

    for layer in inner_middleware:
        app.add_middleware(layer.cls, *layer.args, **layer.kwargs)

    # inside request_context (added first), so its 408 goes through FastAPI's exception handlers
    app.add_middleware(BodyTimeoutMiddleware, body_timeout_s=body_timeout_s)

    # outermost: sees every answer, including the 408s and 413s from inside
    app.add_middleware(RequestContextMiddleware, service=service, requests_total=requests_total, latency=latency)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        return JSONResponse(error_body(exc.code, exc.message), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        details = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": e.get("msg", "")} for e in exc.errors()]
        fields = ", ".join(d["field"] or "body" for d in details)
        return JSONResponse(error_body("invalid_request", f"invalid field(s): {fields}", details), status_code=422)

    default_openapi = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schemas = default_openapi().get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:  # our 422s carry the error body, not FastAPI's
                schemas["HTTPValidationError"] = ERROR_BODY_SCHEMA
        return app.openapi_schema

    app.openapi = openapi

    @app.get("/healthz", include_in_schema=False)
    async def healthz():
        return {"status": "ok", "service": service}

    @app.get("/readyz", include_in_schema=False)
    async def readyz():
        problems = [p for p in [await check() for check in app.state.readiness] if p]
        if problems:
            return JSONResponse({"status": "not ready", "service": service, "problems": problems}, status_code=503)
        return {"status": "ready", "service": service}

    @app.get("/metrics", include_in_schema=False)
    async def metrics():
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
