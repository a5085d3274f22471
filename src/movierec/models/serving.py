"""The serving artifact: everything the ranker needs to score by one matrix product.

Every model that serves exports one. The ranker orders movies by

    rank_score(u, i) = user_vectors[u] . item_vectors[i] + item_bias[i]

A model with a separate rating head (the fusion model) carries it in ``rating``, and predicts

    rating(u, i) = global_mean + rating.user_bias[u] + rating.item_bias[i] + rating.user_vectors[u] . rating.item_vectors[i]

Without one, the rating uses the served tables themselves (``global_mean + user_bias[u] +
rank_score(u, i)``), as for a single-head factorisation. ``modality_attention`` holds, per item,
the fusion model's attention over ``modality_names`` (rows sum to 1 over the modalities
present), which explanations use.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from movierec.data.errors import DataError


class ArtifactError(DataError):
    """A serving artifact is missing or inconsistent."""


@dataclass
class RatingHead:
    """Rating-prediction tables, row-aligned with the artifact's users and movies."""

    user_vectors: np.ndarray
    user_bias: np.ndarray
    item_vectors: np.ndarray
    item_bias: np.ndarray

    def __post_init__(self) -> None:
        for name in ("user_vectors", "user_bias", "item_vectors", "item_bias"):
            setattr(self, name, np.asarray(getattr(self, name), np.float32))

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {f"rating_{k}": getattr(self, k) for k in ("user_vectors", "user_bias", "item_vectors", "item_bias")}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "RatingHead | None":
        keys = ("user_vectors", "user_bias", "item_vectors", "item_bias")
        if f"rating_{keys[0]}" not in arrays:
            return None
        return cls(**{k: arrays.pop(f"rating_{k}") for k in keys})


@dataclass
class ServingArtifact:
    version: str
    movie_ids: np.ndarray
    item_vectors: np.ndarray
    item_bias: np.ndarray
    user_ids: np.ndarray
    user_vectors: np.ndarray
    user_bias: np.ndarray
    global_mean: float
    modality_names: list[str] = field(default_factory=list)
    modality_attention: np.ndarray | None = None
    rating: RatingHead | None = None
    metadata: dict = field(default_factory=dict)
    item_rated: np.ndarray | None = None
    """Per item, whether anyone rated it in the training data (None: not recorded, every item
    counts as rated); the ranker can give the others, new movies, a share of the top slots."""

    def __post_init__(self) -> None:
        self.movie_ids = np.asarray(self.movie_ids, np.int64)
        self.item_vectors = np.asarray(self.item_vectors, np.float32)
        self.item_bias = np.asarray(self.item_bias, np.float32)
        self.user_ids = np.asarray(self.user_ids, np.int64)
        self.user_vectors = np.asarray(self.user_vectors, np.float32)
        self.user_bias = np.asarray(self.user_bias, np.float32)
        n, d = self.item_vectors.shape
        if self.item_bias.shape != (n,) or self.movie_ids.shape != (n,):
            raise ArtifactError("item ids, vectors and biases do not line up")
        if self.user_vectors.shape != (len(self.user_ids), d) or self.user_bias.shape != (len(self.user_ids),):
            raise ArtifactError("user ids, vectors and biases do not line up")
        if self.modality_attention is not None:
            self.modality_attention = np.asarray(self.modality_attention, np.float32)
            if self.modality_attention.shape != (n, len(self.modality_names)):
                raise ArtifactError("modality attention must be (items, modalities)")
        if self.item_rated is not None:
            self.item_rated = np.asarray(self.item_rated, bool)
            if self.item_rated.shape != (n,):
                raise ArtifactError("item_rated must have one flag per item")
        if self.rating is not None:
            r = self.rating
            if r.item_vectors.shape[0] != n or r.item_bias.shape != (n,) or r.user_bias.shape != (len(self.user_ids),) \
                    or r.user_vectors.shape != (len(self.user_ids), r.item_vectors.shape[1]):
                raise ArtifactError("rating head tables do not line up with the artifact's users and movies")

    def rating_tables(self) -> RatingHead:
        """The tables that predict ratings: the rating head, or the served tables without one."""
        if self.rating is not None:
            return self.rating
        return RatingHead(self.user_vectors, self.user_bias, self.item_vectors, self.item_bias)

    def predict_rating(self, user_rows: np.ndarray, item_rows: np.ndarray) -> np.ndarray:
        """Predicted ratings of (user row, item row) pairs; a row of -1 contributes nothing
        (an unknown user gets the item's prediction, an unknown item the user's)."""
        user_rows, item_rows = np.asarray(user_rows), np.asarray(item_rows)
        t = self.rating_tables()
        uv, ub, iv, ib = t.user_vectors, t.user_bias, t.item_vectors, t.item_bias
        known_u, known_i = user_rows >= 0, item_rows >= 0
        p = np.where(known_u[:, None], uv[np.maximum(user_rows, 0)], 0.0)
        bu = np.where(known_u, ub[np.maximum(user_rows, 0)], 0.0)
        q = np.where(known_i[:, None], iv[np.maximum(item_rows, 0)], 0.0)
        bi = np.where(known_i, ib[np.maximum(item_rows, 0)], 0.0)
        return np.clip(self.global_mean + bu + bi + (p * q).sum(axis=1), 0.5, 5.0)

    @property
    def dim(self) -> int:
        return int(self.item_vectors.shape[1])

    def save(self, folder: Path) -> None:
        """Write atomically: a reader sees the old artifact or the new one, never half of one."""
        folder = Path(folder)
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        arrays = dict(
            movie_ids=self.movie_ids, item_vectors=self.item_vectors, item_bias=self.item_bias,
            user_ids=self.user_ids, user_vectors=self.user_vectors, user_bias=self.user_bias,
        )
        if self.modality_attention is not None:
            arrays["modality_attention"] = self.modality_attention
        if self.item_rated is not None:
            arrays["item_rated"] = self.item_rated
        if self.rating is not None:
            arrays.update(self.rating.as_arrays())
        np.savez(tmp / "artifact.npz", **arrays)
        meta = {"version": self.version, "global_mean": self.global_mean, "modality_names": self.modality_names, "metadata": self.metadata}
        (tmp / "artifact.json").write_text(json.dumps(meta, indent=1, default=str))
        if folder.exists():
            old = folder.with_name(folder.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)

    @classmethod
    def load(cls, folder: Path) -> "ServingArtifact":
        folder = Path(folder)
        if not (folder / "artifact.json").exists():
            raise ArtifactError(f"no serving artifact in {folder} (train a model first: `movierec model train`)")
        meta = json.loads((folder / "artifact.json").read_text())
        with np.load(folder / "artifact.npz") as z:
            arrays = {k: z[k] for k in z.files}
        rating = RatingHead.from_arrays(arrays)
        return cls(
            version=meta["version"], global_mean=float(meta["global_mean"]), modality_names=list(meta["modality_names"]),
            metadata=meta.get("metadata", {}), modality_attention=arrays.pop("modality_attention", None), rating=rating, **arrays,
        )
