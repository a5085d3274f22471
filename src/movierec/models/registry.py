"""The in-house models by name: what each needs and how it differs from the fusion defaults.

    spec = get_model("fusion")         # unknown names fail with the list of known ones
    cfg = spec.config({"epochs": 10})  # unknown keys fail, never silently ignored
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from pydantic import ValidationError

from movierec.data.errors import DataError
from movierec.features.store import ModalityFeatures
from movierec.models.config import FusionConfig
from movierec.models.item_content import build_item_content
from movierec.models.training import TrainedFusion, train_fusion

import numpy as np


class ModelConfigError(DataError):
    """An unknown model name or a bad hyperparameter."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    requires: frozenset[str]
    """Data the model reads: "ratings" and/or "features" (the modality feature store)."""
    defaults: dict = field(default_factory=dict)

    def config(self, overrides: dict | None = None) -> FusionConfig:
        try:
            return FusionConfig(**{**self.defaults, **(overrides or {})})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
            raise ModelConfigError(f"bad {self.name} config: {problems}") from None


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("fusion", "modality tokens + Transformer + attention pooling, with user/item IDs, rated history and an item-item term",
                  frozenset({"ratings", "features"})),
        ModelSpec("mf", "ID-only biased matrix factorisation (no content, no history): the collaborative baseline",
                  frozenset({"ratings"}), {"modalities": [], "use_history": False, "item_item_rank": 0}),
        ModelSpec("content", "content-only items (no item IDs): every movie is scored from its modalities alone",
                  frozenset({"ratings", "features"}), {"use_item_ids": False, "use_history": False, "item_item_rank": 0}),
    )
}


def get_model(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelConfigError(f"unknown model {name!r}; known: {', '.join(REGISTRY)}") from None


def resolve_modalities(cfg: FusionConfig, features: dict[str, ModalityFeatures]) -> list[str]:
    """The modalities a model fuses: all in the store (None), or the given list, every one of which
    must be built."""
    if cfg.modalities is None:
        return list(features)
    unknown = [m for m in cfg.modalities if m not in features]
    if unknown:
        raise ModelConfigError(f"modalities {', '.join(unknown)} are not in the feature store; available: {', '.join(features) or 'none'}")
    return list(cfg.modalities)


def train_model(spec: ModelSpec, cfg: FusionConfig, train: pd.DataFrame, catalog_ids: np.ndarray,
                features: dict[str, ModalityFeatures], valid: pd.DataFrame | None = None, progress: bool = True,
                collaborative: TrainedFusion | None = None) -> TrainedFusion:
    """Train a registered model on ``train`` over the movies ``catalog_ids`` (``collaborative``:
    see ``movierec.models.training.train_fusion``)."""
    names = resolve_modalities(cfg, features) if "features" in spec.requires else []
    if "features" in spec.requires and not names and not cfg.use_item_ids:
        raise ModelConfigError(f"{spec.name} needs at least one modality; the feature store has none (run `movierec features build`)")
    cfg = cfg.model_copy(update={"modalities": names})  # the saved config names what was fused, not a default list
    content = build_item_content(features, catalog_ids, names)
    return train_fusion(train, content, cfg, valid=valid, progress=progress, collaborative=collaborative)
