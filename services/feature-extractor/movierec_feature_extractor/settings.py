"""Settings of the feature-extractor service (env prefix ``MOVIEREC_FEATURES_``).

The encoder choices (``text_encoder``, ``poster_options``, ...) are the ones the batch build
reads, so the service encodes new movies exactly as the store was built.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator

from movierec.features.config import COMPUTED_MODALITIES, FeatureSettings
from movierec.settings import get_settings


class ServiceSettings(FeatureSettings):
    store_dir: Path | None = None
    """Feature store folder; empty means the core ``Settings.features_dir``."""
    max_upload_bytes: int = 10 * 1024 * 1024
    modalities: list[str] = list(COMPUTED_MODALITIES)
    """Computed modalities this service loads encoders for (e.g. drop audio where YAMNet is absent)."""
    log_level: str = "INFO"

    @field_validator("modalities")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in COMPUTED_MODALITIES]
        if unknown:
            raise ValueError(f"unknown modality {unknown[0]!r}; computed modalities: {', '.join(COMPUTED_MODALITIES)}")
        return value

    @property
    def features_dir(self) -> Path:
        return self.store_dir or get_settings().features_dir
