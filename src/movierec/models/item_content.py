"""Per-item modality inputs in one order: standardised matrices and presence masks.

Rows whose mask is False are zeros and are masked out by the model, never read as present.
The standardisation statistics travel with the model so that a brand-new movie's vectors are
scaled exactly like the training catalog's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.data.dataset import Dataset
from movierec.features.store import MODALITIES, FeatureStore, FeatureStoreError, ModalityFeatures


MAX_INPUT_DIM = 128
"""Wider modalities are reduced to this many principal components (fit on present rows): the
projection of a 1280-d poster vector for the whole catalog dominated a CPU training step."""


@dataclass
class ModalityScaling:
    mean: np.ndarray
    std: np.ndarray
    components: np.ndarray | None = None
    """(dim, k) principal axes of the standardised rows, or None to keep every dimension."""

    def apply(self, matrix: np.ndarray) -> np.ndarray:
        z = (np.asarray(matrix, np.float32) - self.mean) / self.std
        if self.components is not None:
            z = z @ self.components
        return z.astype(np.float32)

    def as_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {f"{prefix}mean": self.mean, f"{prefix}std": self.std}
        if self.components is not None:
            out[f"{prefix}components"] = self.components
        return out


@dataclass
class ItemContent:
    """``matrices[m]`` is (n_items, dim_m) standardised; ``masks`` is (n_items, n_modalities)."""

    movie_ids: np.ndarray
    names: list[str]
    matrices: list[np.ndarray]
    masks: np.ndarray
    scaling: list[ModalityScaling]
    provenance: dict

    @property
    def dims(self) -> list[int]:
        return [m.shape[1] for m in self.matrices]

    def coverage(self) -> dict[str, float]:
        return {n: float(self.masks[:, k].mean()) for k, n in enumerate(self.names)}


def fit_scaling(matrix: np.ndarray, mask: np.ndarray, max_dim: int = MAX_INPUT_DIM) -> ModalityScaling:
    present = matrix[mask]
    if len(present) == 0:
        return ModalityScaling(np.zeros(matrix.shape[1], np.float32), np.ones(matrix.shape[1], np.float32))
    mean = present.mean(axis=0).astype(np.float32)
    std = present.std(axis=0)
    std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
    components = None
    if matrix.shape[1] > max_dim and len(present) > max_dim:
        z = (present - mean) / std
        _, _, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
        components = vt[:max_dim].T.astype(np.float32)
        # rescale so each component has unit variance like the other inputs
        components /= np.maximum((z @ components).std(axis=0), 1e-6)
    return ModalityScaling(mean, std, components)


def build_item_content(features: dict[str, ModalityFeatures], movie_ids: np.ndarray, names: list[str]) -> ItemContent:
    """Align the chosen modalities to ``movie_ids`` and standardise each on its present rows."""
    unknown = [n for n in names if n not in features]
    if unknown:
        raise FeatureStoreError(f"modalities {', '.join(unknown)} are not available; available: {', '.join(features) or 'none'}")
    matrices, masks, scaling = [], [], []
    for name in names:
        matrix, mask = features[name].aligned(movie_ids)
        s = fit_scaling(matrix, mask)
        scaled = s.apply(matrix)
        scaled[~mask] = 0.0
        matrices.append(scaled)
        masks.append(mask)
        scaling.append(s)
    masks_arr = np.stack(masks, axis=1) if masks else np.zeros((len(movie_ids), 0), bool)
    provenance = {n: features[n].provenance for n in names}
    return ItemContent(np.asarray(movie_ids, np.int64), list(names), matrices, masks_arr, scaling, provenance)


def trailer_features_as_modalities(dataset: Dataset) -> dict[str, ModalityFeatures]:
    """MMTF-14K trailer vectors loaded with the dataset, in feature-store form."""
    out = {}
    for short, feats in dataset.trailer_features.items():
        name = f"trailer_{short}"
        out[name] = ModalityFeatures(name, feats.movie_ids, feats.matrix, np.ones(len(feats.movie_ids), bool), {"source": feats.source})
    return out


def available_features(store: FeatureStore, dataset: Dataset | None = None) -> dict[str, ModalityFeatures]:
    """Every modality in the store, plus the dataset's trailer vectors where the store lacks them."""
    features = store.load_all()
    if dataset is not None:
        for name, feats in trailer_features_as_modalities(dataset).items():
            features.setdefault(name, feats)
    ordered = [m for m in MODALITIES if m in features] + sorted(set(features) - set(MODALITIES))
    return {m: features[m] for m in ordered}
