"""Who may do what: user API keys and signed user tokens bound to a user id, an admin
credential, a per-client rate limiter, and settings that refuse placeholder secrets outside
development.

Library code (no web framework): ``SecuritySettings``, ``Authenticator``, ``Principal``,
``issue_user_token``/``verify_user_token``, ``user_api_key``, ``RedisRateLimiter``, and the
``AccessError`` family (each carries its HTTP status and code). ``movierec.security.fastapi``
turns them into FastAPI dependencies.
"""

from movierec.security.access import Authenticator, Principal
from movierec.security.errors import (
    AccessError,
    ExpiredCredential,
    Forbidden,
    InvalidCredential,
    MissingCredential,
    RateLimited,
)
from movierec.security.rate_limit import RateDecision, RedisRateLimiter
from movierec.security.settings import InsecureSettings, SecuritySettings, get_security_settings
from movierec.security.tokens import TokenClaims, issue_user_token, user_api_key, verify_user_token

__all__ = [
    "AccessError",
    "Authenticator",
    "ExpiredCredential",
    "Forbidden",
    "InsecureSettings",
    "InvalidCredential",
    "MissingCredential",
    "Principal",
    "RateDecision",
    "RateLimited",
    "RedisRateLimiter",
    "SecuritySettings",
    "TokenClaims",
    "get_security_settings",
    "issue_user_token",
    "user_api_key",
    "verify_user_token",
]
