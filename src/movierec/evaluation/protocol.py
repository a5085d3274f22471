"""The one protocol every model and peer is measured with.

- Rating: predicted ratings for the test pairs -> RMSE, MAE and the rating >= 4 "like" view.
- Top-K: for each user with a test rating >= 4, rank every catalog movie they did not rate in
  training (no sampled negatives); positives are their test ratings >= 4.
- Cold items: rank only the held-out movies of a cold-item split for each user who liked one;
  and, as a new movie meets users in the service, rank them among the whole catalog (every movie
  the user did not rate in training), positives being the held-out movies the user liked.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from movierec.data.dataset import LIKE
from movierec.evaluation.metrics import like_classification, mae, ndcg_at_k, recall_at_k, rmse, top_k
from movierec.models.serving import ServingArtifact

K = 20
LIKE_CUT = 3.6
"""A predicted rating at or above this is a predicted like, for every model alike. Predictions
shrink toward the mean, so cutting at 4.0 itself calls few likes; in an ad-hoc sweep of the fusion
model on a 10% validation slice of the seed-0 random split's training part (never the test part),
cuts 3.4/3.5/3.6/3.7/3.8/3.9/4.0 gave like accuracy 0.703/0.719/0.721/0.709/0.694/0.675/0.650."""


class Scorer(Protocol):
    """A fitted model as the protocol sees it."""

    def predict(self, user_ids: np.ndarray, movie_ids: np.ndarray) -> np.ndarray:
        """Predicted ratings of (user, movie) pairs."""

    def rank_scores(self, user_ids: np.ndarray, movie_ids: np.ndarray) -> np.ndarray:
        """(users, movies) scores, higher is better; -inf for a movie the model cannot score."""


def lookup(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Positions of ``ids`` in the id array ``table`` (-1 where absent)."""
    table = np.asarray(table)
    order = np.argsort(table, kind="stable")
    pos = np.searchsorted(table, ids, sorter=order)
    pos = np.minimum(pos, len(table) - 1)
    found = order[pos]
    return np.where(table[found] == ids, found, -1)


class ArtifactScorer:
    """Ranks exactly as the ranker serves (p_u . q_i + b_i) and predicts with the artifact's rating head."""

    def __init__(self, artifact: ServingArtifact):
        self.a = artifact

    def predict(self, user_ids: np.ndarray, movie_ids: np.ndarray) -> np.ndarray:
        return self.a.predict_rating(lookup(np.asarray(user_ids), self.a.user_ids), lookup(np.asarray(movie_ids), self.a.movie_ids))

    def rank_scores(self, user_ids: np.ndarray, movie_ids: np.ndarray) -> np.ndarray:
        user_rows = lookup(np.asarray(user_ids), self.a.user_ids)
        p = np.where(user_rows[:, None] >= 0, self.a.user_vectors[np.maximum(user_rows, 0)], 0.0)
        rows = lookup(np.asarray(movie_ids), self.a.movie_ids)
        scores = p @ self.a.item_vectors[np.maximum(rows, 0)].T + self.a.item_bias[np.maximum(rows, 0)]
        scores[:, rows < 0] = -np.inf
        return scores


def rating_metrics(scorer: Scorer, test: pd.DataFrame) -> dict[str, float]:
    pred = scorer.predict(test["user_id"].to_numpy(), test["movie_id"].to_numpy())
    actual = test["rating"].to_numpy(float)
    out = {"rmse": rmse(pred, actual), "mae": mae(pred, actual)}
    out.update({f"like_{k}": v for k, v in like_classification(pred, actual, LIKE, LIKE_CUT).items()})
    return out


def _ranking(scorer: Scorer, users: np.ndarray, candidates: np.ndarray, exclude: dict[int, np.ndarray],
             positives: dict[int, set[int]], k: int, chunk: int = 256) -> dict[str, float]:
    recalls, ndcgs = [], []
    for start in range(0, len(users), chunk):
        batch = users[start:start + chunk]
        scores = np.asarray(scorer.rank_scores(batch, candidates), dtype=np.float64)
        for row, u in enumerate(batch):
            cols = exclude.get(int(u))
            if cols is not None and len(cols):
                scores[row, cols] = -np.inf
        best = top_k(scores, k)
        for row, u in enumerate(batch):
            ranked = candidates[best[row]]
            recalls.append(recall_at_k(ranked, positives[int(u)], k))
            ndcgs.append(ndcg_at_k(ranked, positives[int(u)], k))
    return {f"recall@{k}": float(np.mean(recalls)), f"ndcg@{k}": float(np.mean(ndcgs)), "users": len(users)}


def topk_metrics(scorer: Scorer, train: pd.DataFrame, test: pd.DataFrame, catalog_ids: np.ndarray, k: int = K,
                 users: np.ndarray | None = None) -> dict[str, float]:
    """Recall@k and NDCG@k ranking the whole catalog minus each user's training movies."""
    candidates = np.asarray(catalog_ids)
    liked = test[test["rating"] >= LIKE]
    positives = {int(u): set(g["movie_id"].astype(int)) for u, g in liked.groupby("user_id")}
    eval_users = np.array(sorted(set(positives) & set(train["user_id"].astype(int))), dtype=np.int64)
    if users is not None:
        eval_users = np.intersect1d(eval_users, users)
    cols = lookup(train["movie_id"].to_numpy(), candidates)
    t = train.assign(col=cols)
    exclude = {int(u): g["col"].to_numpy()[g["col"].to_numpy() >= 0] for u, g in t.groupby("user_id")}
    return _ranking(scorer, eval_users, candidates, exclude, positives, k)


def cold_item_metrics(scorer: Scorer, test: pd.DataFrame, cold_ids: np.ndarray, k: int = K) -> dict[str, float]:
    """Recall@k and NDCG@k ranking only the held-out movies, for users who liked one of them."""
    liked = test[(test["rating"] >= LIKE) & test["movie_id"].isin(cold_ids)]
    positives = {int(u): set(g["movie_id"].astype(int)) for u, g in liked.groupby("user_id")}
    users = np.array(sorted(positives), dtype=np.int64)
    return _ranking(scorer, users, np.asarray(cold_ids), {}, positives, k)


COLD_SPLIT_METRICS = (f"cold_recall@{K}", f"cold_ndcg@{K}", f"cold_catalog_recall@{K}", f"cold_catalog_ndcg@{K}")
"""What ``cold_split_metrics`` measures (at ``K``). Also part of a cached cold unit's key, so a
result cached before a metric was added is computed again instead of lacking it."""


def cold_split_metrics(scorer: Scorer, train: pd.DataFrame, test: pd.DataFrame, cold_ids: np.ndarray, catalog_ids: np.ndarray,
                       k: int = K) -> dict[str, float]:
    """A cold-item split's figures: the held-out movies ranked among themselves (``cold_*``) and
    among the whole catalog (``cold_catalog_*``), where they compete with the movies seen in training;
    ``users``: how many users liked a held-out movie."""
    alone = cold_item_metrics(scorer, test, cold_ids, k)
    among_all = topk_metrics(scorer, train, test[test["movie_id"].isin(cold_ids)], catalog_ids, k)
    return {f"cold_recall@{k}": alone[f"recall@{k}"], f"cold_ndcg@{k}": alone[f"ndcg@{k}"],
            f"cold_catalog_recall@{k}": among_all[f"recall@{k}"], f"cold_catalog_ndcg@{k}": among_all[f"ndcg@{k}"],
            "users": alone["users"]}
