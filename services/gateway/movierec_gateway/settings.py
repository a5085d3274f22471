"""Gateway settings (env prefix ``MOVIEREC_GATEWAY_``). Every other service is found through a
URL here; the ranker may be several replicas (comma-separated URLs)."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from movierec.settings import get_settings
from movierec.storage.decisions import DEFAULT_MAX_LEN


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOVIEREC_GATEWAY_", env_file=".env", extra="ignore")

    ranker_urls: str = "http://127.0.0.1:8001"
    """One or more ranker replicas, comma-separated; calls are spread round-robin."""
    policy_url: str = "http://127.0.0.1:8002"
    feedback_url: str = "http://127.0.0.1:8003"
    features_url: str = "http://127.0.0.1:8004"
    redis_url: str | None = None
    """Default: the core ``MOVIEREC_REDIS_URL``, else redis://127.0.0.1:6379/0."""

    ranker_timeout_s: float = 2.0
    policy_timeout_s: float = 0.3
    """The policy is optional: past this the ranker's order is served."""
    feedback_timeout_s: float = 1.0
    features_timeout_s: float = 120.0
    redis_timeout_s: float = 0.25

    candidates: int = 100
    """Candidates the ranker sends to the policy per request (at least k)."""
    cache_ttl_s: int = 600
    stale_ttl_s: int = 86_400
    """How long a user's last list is kept to answer with when the ranker is down."""
    decision_log_max: int = DEFAULT_MAX_LEN
    """Decisions the log keeps for the policy's retraining (``movierec.storage.decisions``), ~2 KB each."""

    admin_api_key: str | None = None
    """This gateway's admin credential (``X-API-Key``) in place of ``MOVIEREC_ADMIN_API_KEY``; the
    access rules themselves are ``movierec.security`` (the app routes every refusal through it)."""
    poster_dir: Path | None = None
    """Posters of catalog movies; default the core ``MOVIEREC_POSTER_DIR``."""
    added_poster_dir: Path | None = None
    """Where posters of movies added through the admin route go; default ``<home>/posters``."""
    log_level: str = "INFO"

    @field_validator("ranker_urls")
    @classmethod
    def _some_ranker(cls, value: str) -> str:
        if not [u for u in value.split(",") if u.strip()]:
            raise ValueError("give at least one ranker URL")
        return value

    def ranker_url_list(self) -> list[str]:
        return [u.strip().rstrip("/") for u in self.ranker_urls.split(",") if u.strip()]

    def resolved_redis_url(self) -> str:
        return self.redis_url or get_settings().redis_url or "redis://127.0.0.1:6379/0"

    def resolved_poster_dir(self) -> Path | None:
        return self.poster_dir or get_settings().poster_dir

    def resolved_added_poster_dir(self) -> Path:
        return self.added_poster_dir or get_settings().home / "posters"
