"""Policy service settings (env prefix ``MOVIEREC_POLICY_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from movierec.settings import get_settings


class PolicySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOVIEREC_POLICY_", env_file=".env", extra="ignore")

    policy_dir: Path | None = None
    """Where published policies live (default: the core ``models_dir / "policy"``)."""
    reload_interval_s: float = Field(2.0, ge=0)
    """How often, at most, a request checks the ``current`` pointer for a new version."""
    torch_threads: int = Field(1, ge=1)
    """CPU threads for torch. One: the Q-network over a hundred candidates is a few small matrix
    products, and two threads beside the gateway and ranker on a 2-core machine made it ten times
    slower (threads spinning for a core that is busy)."""
    seed: int | None = None
    """Seed of the serving exploration (None: fresh randomness)."""
    log_level: str = "INFO"

    def resolved_policy_dir(self) -> Path:
        return self.policy_dir or get_settings().models_dir / "policy"
