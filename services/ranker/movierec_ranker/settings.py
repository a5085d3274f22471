"""Ranker settings (env prefix ``MOVIEREC_RANKER_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from movierec.settings import get_settings


class RankerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOVIEREC_RANKER_", env_file=".env", extra="ignore")

    artifact_dir: Path | None = None
    """The model folder to serve; default ``<models_dir>/fusion/current``."""
    device: str = "auto"
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    torch_threads: int = 1
    """CPU threads for torch: one thread answers a small top-N fastest and leaves cores to
    concurrent requests and other replicas."""
    reload_interval_s: float = 10.0
    """How often to look for a new model version in ``artifact_dir`` (0: only on POST /v1/reload)."""
    added_items_file: Path | None = None
    """Journal of movies added through ``POST /v1/items``, replayed at start; default
    ``<home>/ranker/added_items.jsonl`` (share it between replicas)."""
    new_movie_share: float = Field(0.0, ge=0.0)
    """Top slots for new movies (no one rated them in training, or added since), relative to their
    part of the catalog: 0 ranks them by their score alone (none then reaches a top 20), 1.0 in
    proportion, 0.5 half that (``movierec.serving.new_movies``; the cost to warm movies is in
    ``reports/new_movie_exposure.md``)."""
    log_level: str = "INFO"

    def model_folder(self) -> Path:
        return self.artifact_dir or get_settings().models_dir / "fusion" / "current"

    def journal(self) -> Path:
        return self.added_items_file or get_settings().home / "ranker" / "added_items.jsonl"
