"""New users on the temporal split: users unseen in training, folded in from their first ratings.

The users with the fewest ratings (``NEW_USER_SHARE`` of them) are removed from training
entirely. Each is then folded in from their earlier ratings (the temporal split's training
part) with no retraining, and judged on their later ratings (>= 4 are positives).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from movierec.data import Dataset
from movierec.data.splits import get_split
from movierec.evaluation import peers
from movierec.evaluation.protocol import ArtifactScorer, lookup, rating_metrics, topk_metrics
from movierec.features.store import ModalityFeatures
from movierec.models.checkpoint import save_trained
from movierec.models.config import FusionConfig
from movierec.models.recommender import load_recommender
from movierec.models.registry import get_model, train_model
from movierec.models.serving import RatingHead, ServingArtifact
from movierec.settings import Settings

NEW_USER_SHARE = 0.2


def pick_new_users(ds: Dataset, share: float = NEW_USER_SHARE) -> np.ndarray:
    counts = ds.ratings.groupby("user_id").size().sort_values(kind="stable")
    return np.sort(counts.index.to_numpy(np.int64)[: int(round(len(counts) * share))])


def new_user_metrics(ds: Dataset, settings: Settings, cfg: FusionConfig, catalog: np.ndarray,
                     features: dict[str, ModalityFeatures], progress: bool = True) -> dict:
    split = get_split(ds, "temporal", 0, settings.splits_dir)
    train, test = split.train(ds), split.test(ds)
    new = pick_new_users(ds)
    is_new_train, is_new_test = train["user_id"].isin(new), test["user_id"].isin(new)
    base, early, later = train[~is_new_train], train[is_new_train], test[is_new_test]
    out: dict = {"users": int(len(new)), "median_early_ratings": float(early.groupby("user_id").size().median())}

    trained = train_model(get_model("fusion"), cfg, base, catalog, features, progress=progress)
    with tempfile.TemporaryDirectory() as tmp:
        save_trained(trained, Path(tmp), "new-users", {})
        rec = load_recommender(Path(tmp) / "current")
    groups = [dict(zip(g["movie_id"].astype(int), g["rating"].astype(float))) for _, g in early.groupby("user_id")]
    served = [rec.fold_in(r) for r in groups]
    rated = [rec.fold_in_rating(r) for r in groups]
    users = np.array(sorted(early["user_id"].unique()), np.int64)
    a = rec.artifact
    tables = a.rating_tables()
    rating = RatingHead(np.stack([v for v, _ in rated]), np.array([b for _, b in rated]), tables.item_vectors, tables.item_bias)
    art = ServingArtifact("new-users", a.movie_ids, a.item_vectors, a.item_bias, users, np.stack([v for v, _ in served]),
                          np.array([b for _, b in served]), a.global_mean, rating=rating)
    ours = ArtifactScorer(art)
    out["ours_foldin"] = {**rating_metrics(ours, later), **topk_metrics(ours, early, later, catalog)}
    out["popularity"] = topk_metrics(peers.Popularity(base), early, later, catalog)

    als = peers.fit_implicit("implicit_als", base, 0)
    index = als.index
    cols = lookup(early["movie_id"].to_numpy(), index.movie_ids)
    vectors = []
    for u in users:
        rows = cols[(early["user_id"].to_numpy() == u) & (cols >= 0)]
        items = sp.csr_matrix((np.ones(len(rows), np.float32), (np.zeros(len(rows), int), rows)), shape=(1, len(index.movie_ids)))
        vectors.append(np.asarray(als.model.recalculate_user(0, items)).reshape(-1))
    folded_index = peers.IdIndex.__new__(peers.IdIndex)
    folded_index.user_ids, folded_index.movie_ids = users, index.movie_ids
    out["implicit_als_foldin"] = topk_metrics(peers.FactorScorer(folded_index, np.stack(vectors), als.q), early, later, catalog)
    return out
