"""What the ranker service loads: the serving artifact plus new-item and new-user paths.

    rec = load_recommender(settings.models_dir / "fusion" / "current")
    rec.artifact                      # ServingArtifact: one matrix product scores every movie
    rec.embed_new_item({"text": v})   # a brand-new movie from its modality vectors, no retraining
    rec.fold_in({318: 5.0, 2571: 4})  # a new user's served vector from a few movies, no retraining
    rec.fold_in_rating({318: 5.0})     # their rating-head vector and bias, for predicted ratings
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from movierec.features.store import MODALITIES
from movierec.models.checkpoint import LoadedCheckpoint, load_checkpoint
from movierec.models.serving import ArtifactError, ServingArtifact
from movierec.models.training import item_item_history_weights


class RecommenderInputError(ValueError):
    """Input to a new-item or new-user call is unusable; ``field`` names the culprit."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass
class NewItem:
    vector: np.ndarray
    bias: float
    """Served (ranking) vector and bias, as the ranker's index holds them."""
    attention: dict[str, float]
    """Attention over the modalities that were given (sums to 1), for explanations."""


class Recommender:
    def __init__(self, artifact: ServingArtifact, checkpoint: LoadedCheckpoint | None, fold_in_l2: float = 1.0):
        self.artifact = artifact
        self.checkpoint = checkpoint
        self.fold_in_l2 = checkpoint.cfg.fold_in_l2 if checkpoint is not None else fold_in_l2
        self._row = {int(m): k for k, m in enumerate(artifact.movie_ids)}
        self._history_row = {int(m): k for k, m in enumerate(checkpoint.movie_ids)} if checkpoint is not None else {}

    @property
    def modality_names(self) -> list[str]:
        return list(self.artifact.modality_names)

    def embed_new_item(self, features: dict[str, np.ndarray]) -> NewItem:
        """Item vector, bias and modality attention of a movie the model never saw.

        ``features`` maps modality name to its raw vector (as the feature extractor writes it);
        modalities left out are masked, known modalities this model does not use are ignored. With no usable modality the movie gets a zero vector and
        zero bias: its predicted rating is the global mean plus the user's bias.
        """
        names = self.modality_names
        unknown = sorted(set(features) - set(MODALITIES) - set(names))
        if unknown:
            raise RecommenderInputError("features", f"unknown modalities {', '.join(unknown)}; known: {', '.join(MODALITIES)}")
        # a modality the system knows but this model was not trained with is ignored, not an error:
        # the feature extractor computes every modality it can for a new movie
        features = {k: v for k, v in features.items() if k in names}
        if self.checkpoint is None or not names:
            return NewItem(np.zeros(self.artifact.dim, np.float32), 0.0, {})
        inputs, mask = [], np.zeros((1, len(names)), bool)
        for k, (name, scaling) in enumerate(zip(names, self.checkpoint.scaling)):
            raw = features.get(name)
            width = scaling.components.shape[1] if scaling.components is not None else scaling.mean.shape[0]
            if raw is None:
                inputs.append(np.zeros((1, width), np.float32))
                continue
            raw = np.asarray(raw, np.float32).reshape(-1)
            if raw.shape[0] != scaling.mean.shape[0]:
                raise RecommenderInputError(f"features.{name}", f"expected {scaling.mean.shape[0]} values, got {raw.shape[0]}")
            if not np.isfinite(raw).all():
                raise RecommenderInputError(f"features.{name}", "contains NaN or infinite values")
            inputs.append(scaling.apply(raw[None, :]))
            mask[0, k] = True
        if not mask.any():
            return NewItem(np.zeros(self.artifact.dim, np.float32), 0.0, {})
        with torch.no_grad():
            out = self.checkpoint.net.content([torch.from_numpy(x) for x in inputs], torch.from_numpy(mask))
        attention = {n: float(out.attention[0, k]) for k, n in enumerate(names) if mask[0, k]}
        # no one rated it, so its part of the item-item term (the served columns after the ranking head's) is zero
        vector = np.zeros(self.artifact.dim, np.float32)
        vector[: out.rank_vector.shape[1]] = out.rank_vector[0].numpy()
        return NewItem(vector, float(out.rank_bias[0]), attention)

    def _known_rows(self, ratings: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
        if not ratings:
            raise RecommenderInputError("ratings", "give at least one rated movie")
        known = [(self._row[int(m)], float(r)) for m, r in ratings.items() if int(m) in self._row]
        if not known:
            raise RecommenderInputError("ratings", "none of these movie ids is in the model's catalog")
        values = np.array([r for _, r in known], np.float64)
        if not np.isfinite(values).all():
            raise RecommenderInputError("ratings", "ratings must be finite numbers")
        return np.array([k for k, _ in known]), values

    def fold_in(self, ratings: dict[int, float]) -> tuple[np.ndarray, float]:
        """A new user's served (ranking) vector and bias from a few movies they rated or liked.

        With history embeddings (the fusion model), the vector is exactly what training gives a
        user the model has no ID for: the normalised sum of the movies' history embeddings, then the
        item-item term's part (the sum of the movies' rows of it, a movie rated below 4 weighted by
        ``dislike_weight`` as in training). Without them, it is the normalised sum of the movies'
        served vectors. Every rated movie is history, whatever its value (which must be finite);
        unknown movie ids are ignored.
        """
        rows, _ = self._known_rows(ratings)
        history = self.checkpoint.history_vectors if self.checkpoint is not None else None
        if history is None:
            return (self.artifact.item_vectors[rows].sum(axis=0) / np.sqrt(len(rows))).astype(np.float32), 0.0
        known = [(self._history_row[int(m)], float(r)) for m, r in ratings.items() if int(m) in self._history_row]
        hist_rows = [row for row, _ in known]
        parts = [history[hist_rows].sum(axis=0) / np.sqrt(len(hist_rows))]
        if self.checkpoint.item_item is not None:
            weights = item_item_history_weights(np.array([r for _, r in known]), self.checkpoint.cfg)
            parts.append(self.checkpoint.item_item.user_vectors(np.zeros(len(hist_rows), np.int64), np.array(hist_rows, np.int64), 1, weights)[0])
        return np.concatenate(parts).astype(np.float32), 0.0

    def fold_in_rating(self, ratings: dict[int, float]) -> tuple[np.ndarray, float]:
        """A new user's rating-head vector and bias from a few (movie id -> rating) pairs.

        Ridge regression of the ratings' residuals (after global mean and item biases) on the
        frozen item vectors. Unknown movie ids are ignored.
        """
        rows, values = self._known_rows(ratings)
        a = self.artifact
        tables = a.rating_tables()
        item_vectors, item_bias = tables.item_vectors, tables.item_bias
        dim = item_vectors.shape[1]
        x = np.hstack([item_vectors[rows].astype(np.float64), np.ones((len(rows), 1))])
        residual = values - a.global_mean - item_bias[rows]
        w = np.linalg.solve(x.T @ x + self.fold_in_l2 * np.eye(dim + 1), x.T @ residual)
        return w[:dim].astype(np.float32), float(w[dim])


def load_recommender(folder: Path) -> Recommender:
    """The recommender in ``folder`` (an artifact folder such as ``models_dir/fusion/current``).

    Its checkpoint (named in the artifact metadata, relative to the folder's parent) adds the
    content encoder for new movies; an artifact without one still serves and folds in users.
    """
    folder = Path(folder)
    artifact = ServingArtifact.load(folder)
    ckpt_rel = artifact.metadata.get("checkpoint")
    checkpoint = None
    if ckpt_rel:
        path = folder.parent / ckpt_rel
        if not path.exists():
            raise ArtifactError(f"artifact {folder} names checkpoint {path}, which is missing")
        checkpoint = load_checkpoint(path)
    return Recommender(artifact, checkpoint)
