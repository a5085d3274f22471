"""Feedback service settings (env prefix ``MOVIEREC_FEEDBACK_``).

The database and Redis come from the core settings (``MOVIEREC_DATABASE_URL``,
``MOVIEREC_REDIS_URL``) unless set here; the service refuses to start without them.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from movierec.settings import get_settings


class FeedbackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOVIEREC_FEEDBACK_", env_file=".env", extra="ignore")

    database_url: str | None = None
    redis_url: str | None = None
    migrate_on_start: bool = True
    """Bring the database to the latest migration when the app starts (idempotent)."""
    refresh_cache: bool = False
    """After invalidating a user's cached lists, also warm them again through the gateway."""
    retrain_after_events: int | None = None
    """Trigger policy retraining after this many new events (default: the core setting; 0: never)."""
    enqueue_timeout_s: float = 2.0
    log_level: str = "INFO"

    def resolved(self) -> "FeedbackSettings":
        """These settings with the core settings filled in where unset."""
        core = get_settings()
        return self.model_copy(update={
            "database_url": self.database_url or core.database_url,
            "redis_url": self.redis_url or core.redis_url,
            "retrain_after_events": self.retrain_after_events if self.retrain_after_events is not None else core.retrain_after_events,
        })
