"""What the ranker service loads: the serving artifact plus new-item and new-user paths.

    rec = load_recommender(settings.models_dir / "fusion" / "current")
    rec.artifact                      # ServingArtifact: one matrix product scores every movie
    rec.embed_new_item({"text": v})   # a brand-new movie from its modality vectors, no retraining
    rec.fold_in({318: 5.0, 2571: 4})  # a new user's vector and bias from a few ratings, no retraining
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from movierec.features.store import MODALITIES
from movierec.models.checkpoint import LoadedCheckpoint, load_checkpoint
from movierec.models.serving import ArtifactError, ServingArtifact


class RecommenderInputError(ValueError):
    """Input to a new-item or new-user call is unusable; ``field`` names the culprit."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass
class NewItem:
    vector: np.ndarray
    bias: float
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
            q, b, att = self.checkpoint.net.item_side(
                [torch.from_numpy(x) for x in inputs], torch.from_numpy(mask), torch.zeros(1)
            )
        attention = {n: float(att[0, k]) for k, n in enumerate(names) if mask[0, k]}
        return NewItem(q[0].numpy().astype(np.float32), float(b[0]), attention)

    def fold_in(self, ratings: dict[int, float]) -> tuple[np.ndarray, float]:
        """A new user's vector and bias from a few (movie id -> rating) pairs, item side frozen.

        Ridge regression of the ratings' residuals (after global mean and item biases) on the
        item vectors, shrunk toward the user's history vector when the model has one. Pass a
        liked movie without a rating as a high rating (e.g. 5.0). Unknown movie ids are ignored.
        """
        if not ratings:
            raise RecommenderInputError("ratings", "give at least one rated movie")
        known = [(self._row[int(m)], float(r)) for m, r in ratings.items() if int(m) in self._row]
        if not known:
            raise RecommenderInputError("ratings", "none of these movie ids is in the model's catalog")
        rows = np.array([k for k, _ in known])
        values = np.array([r for _, r in known], np.float64)
        if not np.isfinite(values).all():
            raise RecommenderInputError("ratings", "ratings must be finite numbers")
        a = self.artifact
        q = a.item_vectors[rows].astype(np.float64)
        x = np.hstack([q, np.ones((len(rows), 1))])
        residual = values - a.global_mean - a.item_bias[rows]
        prior = np.zeros(a.dim + 1)
        if self.checkpoint is not None and self.checkpoint.history_vectors is not None:
            hist_rows = [self._history_row[int(m)] for m in ratings if int(m) in self._history_row]
            if hist_rows:
                prior[: a.dim] = self.checkpoint.history_vectors[hist_rows].sum(axis=0) / np.sqrt(len(hist_rows))
        target = residual - x @ prior
        gram = x.T @ x + self.fold_in_l2 * np.eye(a.dim + 1)
        w = prior + np.linalg.solve(gram, x.T @ target)
        return w[: a.dim].astype(np.float32), float(w[a.dim])


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
