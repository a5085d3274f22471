"""Credentials bound to a user id, signed with ``MOVIEREC_TOKEN_SECRET`` (HMAC-SHA256, stdlib).

- **User token** (``Authorization: Bearer ...``): ``<payload>.<signature>``, both base64url; the
  payload holds the user id, the expiry and whether it is an admin token. Stateless: any gateway
  replica with the secret verifies it.
- **User API key** (``X-API-Key``): ``mrk_<user_id>_<mac>``, a long-lived key derived from the user
  id; changing the secret revokes every key at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from movierec.security.errors import ExpiredCredential, InvalidCredential

API_KEY_PREFIX = "mrk_"
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class TokenClaims:
    user_id: int | None
    expires_at: int
    admin: bool = False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, purpose: bytes, message: bytes) -> bytes:
    return hmac.new(secret.encode(), purpose + b"\x00" + message, hashlib.sha256).digest()


def issue_user_token(user_id: int | None, secret: str, ttl_s: int, *, admin: bool = False, now: float | None = None) -> str:
    """A token for ``user_id`` valid for ``ttl_s`` seconds (``admin``: may do admin actions)."""
    if user_id is None and not admin:
        raise ValueError("a user token needs a user id")
    expires = int((time.time() if now is None else now) + ttl_s)
    payload = json.dumps({"sub": user_id, "exp": expires, "adm": bool(admin)}, separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, b'token', payload))}"


def verify_user_token(token: str, secret: str, *, now: float | None = None) -> TokenClaims:
    """The token's claims; raises ``InvalidCredential`` (forged, malformed) or ``ExpiredCredential``."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise InvalidCredential("token refused: malformed")
    payload_part, mac_part = token.split(".")
    try:
        payload, mac = _unb64(payload_part), _unb64(mac_part)
    except (ValueError, TypeError):
        raise InvalidCredential("token refused: malformed") from None
    if not hmac.compare_digest(mac, _mac(secret, b"token", payload)):
        raise InvalidCredential("token refused: bad signature")
    try:
        claims = json.loads(payload)
        user_id, expires, admin = claims["sub"], int(claims["exp"]), bool(claims.get("adm", False))
    except (ValueError, KeyError, TypeError):
        raise InvalidCredential("token refused: malformed") from None
    if (time.time() if now is None else now) >= expires:
        raise ExpiredCredential()
    return TokenClaims(user_id=int(user_id) if user_id is not None else None, expires_at=expires, admin=admin)


def user_api_key(user_id: int, secret: str) -> str:
    """The API key of ``user_id`` under ``secret``."""
    mac = _mac(secret, b"api-key", str(int(user_id)).encode()).hex()[:40]
    return f"{API_KEY_PREFIX}{int(user_id)}_{mac}"


def verify_user_api_key(key: str, secret: str) -> int:
    """The user id a key belongs to; raises ``InvalidCredential``."""
    try:
        user_part, _ = key[len(API_KEY_PREFIX):].split("_", 1)
        user_id = int(user_part)
    except ValueError:
        raise InvalidCredential("API key refused") from None
    if not key.startswith(API_KEY_PREFIX) or not hmac.compare_digest(key.encode(), user_api_key(user_id, secret).encode()):
        raise InvalidCredential("API key refused")
    return user_id
