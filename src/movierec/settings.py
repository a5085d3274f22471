"""Core settings: where data, third-party files and artifacts live.

Every path is configuration (env prefix ``MOVIEREC_``, or a ``.env`` file in the working
directory). Third-party files that may not be committed (posters, TMDB plots, YAMNet) are
found under ``shared_dir`` unless their own path is given.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]

DatasetFormat = Literal["ml-latest-small", "ml-25m", "ml-1m", "ml-100k"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOVIEREC_", env_file=".env", extra="ignore")

    home: Path = REPO_ROOT / "var"
    """Generated artifacts: splits, feature store, checkpoints, policies, server data."""

    dataset_dir: Path = REPO_ROOT / "data" / "ml-latest-small"
    dataset_format: DatasetFormat = "ml-latest-small"
    mmtf_dir: Path | None = REPO_ROOT / "data" / "mmtf14k"
    mmtf_ivector_file: str = "audio_ivector/fused_llm_mmtf_audio_IVec_splitItem_fold_1_gmm_512_tvDim_40.csv"
    mmtf_avf_file: str = "visual_avf/fused_llm_mmtf_avf_avg.csv"

    shared_dir: Path | None = None
    poster_dir: Path | None = None
    plots_csv: Path | None = None
    trailer_ids_csv: Path | None = None
    trailer_audio_dir: Path | None = None
    yamnet_dir: Path | None = None

    database_url: str | None = None
    """PostgreSQL URL (postgresql+psycopg://...). None: the launcher starts an embedded server."""
    redis_url: str | None = None
    """Redis URL (broker, caches). None: the launcher starts an embedded server."""
    decision_log_key: str = "decisions"
    """The Redis stream the gateway logs the policy's decisions to and the retraining reads
    (``movierec.storage.decisions``); a benchmark run uses one of its own."""
    gateway_url: str = "http://127.0.0.1:8000"
    """Where Celery's cache-refresh task reaches the gateway."""
    retrain_every_s: float = 300.0
    """Celery beat runs policy retraining this often (0: never on a timer)."""
    retrain_after_events: int = 200
    """The feedback service also triggers retraining after this many new events."""
    worker_metrics_port: int = 0
    """A Celery worker serves Prometheus metrics on this port (0: none)."""
    celery_visibility_timeout_s: float = 600.0
    """A task taken by a worker that died is handed out again after this long (longer than any task)."""

    @model_validator(mode="after")
    def _derive_shared_paths(self) -> "Settings":
        if self.shared_dir is not None:
            s = self.shared_dir
            self.poster_dir = self.poster_dir or s / "data" / "posters"
            self.plots_csv = self.plots_csv or s / "data" / "tmdb" / "movie_plots.csv"
            self.trailer_ids_csv = self.trailer_ids_csv or s / "data" / "trailers" / "ml-youtube.csv"
            self.yamnet_dir = self.yamnet_dir or s / "models" / "yamnet"
        return self

    @property
    def splits_dir(self) -> Path:
        return self.home / "splits"

    @property
    def features_dir(self) -> Path:
        return self.home / "features"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built once from the environment."""
    return Settings()
