"""Refusals. Each carries the HTTP status and error code a service answers with, so the mapping
to HTTP lives in one place (``movierec.security.fastapi``)."""

from __future__ import annotations


class AccessError(Exception):
    status = 401
    code = "unauthenticated"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class MissingCredential(AccessError):
    """No API key or token was sent where one is needed."""

    def __init__(self, message: str = "credential missing: send 'Authorization: Bearer <token>' or 'X-API-Key: <key>'"):
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class InvalidCredential(AccessError):
    """A key or token that does not verify (wrong key, bad signature, malformed)."""

    code = "invalid_credential"

    def __init__(self, message: str = "credential refused: the key or token is not valid"):
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class ExpiredCredential(AccessError):
    code = "expired_credential"

    def __init__(self, message: str = "credential expired: get a new token"):
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class Forbidden(AccessError):
    """A valid credential that does not allow this action (another user's data, admin only)."""

    status = 403
    code = "forbidden"


class RateLimited(AccessError):
    status = 429
    code = "rate_limited"

    def __init__(self, retry_after_s: float):
        seconds = max(1, int(retry_after_s + 0.999))
        super().__init__(f"too many requests: retry after {seconds} s", headers={"Retry-After": str(seconds)})
        self.retry_after_s = seconds
