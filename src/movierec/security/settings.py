"""Security settings, from the environment (prefix ``MOVIEREC_``), never from code.

``MOVIEREC_ENV`` says where we run. In ``development`` the built-in placeholder secrets work, so
``make up`` needs no set-up; anywhere else a placeholder, empty or short secret stops the service
at start (``InsecureSettings``) with the variable to set.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_TOKEN_SECRET = "dev-insecure-token-secret-change-me"
DEV_ADMIN_API_KEY = "dev-insecure-admin-key-change-me"
MIN_SECRET_LENGTH = 24
_PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me", "placeholder", "insecure", "example", "default")
_PLACEHOLDERS = {"", "secret", "password", "admin", "dev", "development", "test", "token", "key", "xxx", "todo"}


class InsecureSettings(RuntimeError):
    """A placeholder or weak secret outside development."""


def is_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    return lowered in _PLACEHOLDERS or any(w in lowered for w in _PLACEHOLDER_WORDS) or len(lowered) < MIN_SECRET_LENGTH


class SecuritySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOVIEREC_", env_file=".env", extra="ignore")

    env: str = "development"
    """``development`` accepts the placeholder secrets below; any other value refuses them."""
    token_secret: SecretStr = SecretStr(DEV_TOKEN_SECRET)
    """Signs user tokens and derives user API keys (``MOVIEREC_TOKEN_SECRET``)."""
    admin_api_key: SecretStr = SecretStr(DEV_ADMIN_API_KEY)
    """The admin credential, sent as ``X-API-Key`` (``MOVIEREC_ADMIN_API_KEY``)."""
    token_ttl_s: int = Field(default=3600, ge=1, le=30 * 86400)
    read_access: Literal["public", "keyed"] = "public"
    """Reading recommendations and movies: open to anyone, or only with a valid credential."""
    write_access: Literal["keyed", "open"] | None = None
    """Writing feedback and deleting a user's data: only with that user's credential (``keyed``), or
    by anyone (``open``, development only: the local demo page needs no log-in). Default: open in
    development, keyed elsewhere. A credential that is sent is still checked."""
    rate_limit_per_s: float = Field(default=50.0, gt=0)
    """Sustained requests per second per client at the gateway."""
    rate_limit_burst: int = Field(default=100, ge=1)
    """Requests a client may send at once before the sustained rate applies."""
    trust_forwarded_for: bool = False
    """Take the client address from ``X-Forwarded-For`` (only behind a proxy that sets it)."""

    @property
    def is_development(self) -> bool:
        return self.env.strip().lower() in ("development", "dev")

    @property
    def writes_open(self) -> bool:
        return self.write_access == "open" if self.write_access is not None else self.is_development

    @property
    def admin_open(self) -> bool:
        """Admin actions without a credential: only in development with no admin key configured
        (the placeholder key is public anyway, so asking for it would protect nothing)."""
        return self.is_development and self.admin_api_key.get_secret_value() == DEV_ADMIN_API_KEY

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> "SecuritySettings":
        if self.is_development:
            return self
        if self.write_access == "open":
            raise InsecureSettings(f"MOVIEREC_ENV={self.env}: MOVIEREC_WRITE_ACCESS=open is for development only")
        weak = [name for name, value in (("MOVIEREC_TOKEN_SECRET", self.token_secret), ("MOVIEREC_ADMIN_API_KEY", self.admin_api_key))
                if is_placeholder(value.get_secret_value())]
        if weak:
            raise InsecureSettings(
                f"MOVIEREC_ENV={self.env}: refusing to start with a placeholder or weak secret in {', '.join(weak)} "
                f"(set a random value of at least {MIN_SECRET_LENGTH} characters, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        if self.token_secret.get_secret_value() == self.admin_api_key.get_secret_value():
            raise InsecureSettings("MOVIEREC_TOKEN_SECRET and MOVIEREC_ADMIN_API_KEY must differ")
        return self


@lru_cache(maxsize=1)
def get_security_settings() -> SecuritySettings:
    """The process-wide security settings, built (and checked) once."""
    return SecuritySettings()
