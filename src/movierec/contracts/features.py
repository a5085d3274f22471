"""The feature-extractor's answer for one movie: every modality it could compute."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ModalityVector(BaseModel):
    dim: int = Field(ge=1)
    encoder: str
    vector: list[float]


class MovieFeatures(BaseModel):
    movie_id: int
    modalities: dict[str, ModalityVector]
    skipped: dict[str, str] = Field(default_factory=dict, description="Modality -> why it was not computed.")

    def vectors(self) -> dict[str, list[float]]:
        return {name: m.vector for name, m in self.modalities.items()}
