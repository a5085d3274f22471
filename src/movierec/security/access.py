"""``Authenticator``: from the request's credential to a ``Principal``, and the two checks every
protected route makes (``require_user`` for a user's own data, ``require_admin``)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from movierec.security.errors import Forbidden, InvalidCredential, MissingCredential
from movierec.security.settings import SecuritySettings
from movierec.security.tokens import API_KEY_PREFIX, issue_user_token, user_api_key, verify_user_api_key, verify_user_token


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (``user_id``) and/or an admin."""

    user_id: int | None
    admin: bool = False
    via: str = "token"
    """``token``, ``api_key`` or ``admin_key``."""

    @property
    def client_id(self) -> str:
        """A stable name for rate limiting (no secret in it)."""
        return "admin" if self.admin and self.user_id is None else f"user:{self.user_id}"


class Authenticator:
    def __init__(self, settings: SecuritySettings):
        self.settings = settings
        self._secret = settings.token_secret.get_secret_value()
        self._admin_key = settings.admin_api_key.get_secret_value()

    def authenticate(self, authorization: str | None, api_key: str | None, *, now: float | None = None) -> Principal | None:
        """The caller, or None when no credential was sent. A credential that was sent but does
        not verify is refused (``InvalidCredential``/``ExpiredCredential``), never ignored."""
        if api_key:
            if hmac.compare_digest(api_key.encode(), self._admin_key.encode()):
                return Principal(user_id=None, admin=True, via="admin_key")
            if api_key.startswith(API_KEY_PREFIX):
                return Principal(user_id=verify_user_api_key(api_key, self._secret), via="api_key")
            raise InvalidCredential("API key refused")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise InvalidCredential("Authorization refused: use 'Bearer <token>'")
            claims = verify_user_token(token.strip(), self._secret, now=now)
            return Principal(user_id=claims.user_id, admin=claims.admin, via="token")
        return None

    @staticmethod
    def require_user(principal: Principal | None, user_id: int) -> Principal:
        """Allow only ``user_id`` itself (or an admin) to write or delete ``user_id``'s data."""
        if principal is None:
            raise MissingCredential()
        if principal.admin or principal.user_id == int(user_id):
            return principal
        raise Forbidden(f"credential of user {principal.user_id} may not act on user {user_id}'s data (user_id)")

    @staticmethod
    def require_admin(principal: Principal | None) -> Principal:
        if principal is None:
            raise MissingCredential("admin credential missing: send 'X-API-Key: <admin key>'")
        if not principal.admin:
            raise Forbidden("this action needs the admin credential")
        return principal

    def token_for(self, user_id: int, *, ttl_s: int | None = None, admin: bool = False) -> str:
        return issue_user_token(user_id, self._secret, ttl_s or self.settings.token_ttl_s, admin=admin)

    def api_key_for(self, user_id: int) -> str:
        return user_api_key(user_id, self._secret)
