"""Metric functions: pure, on plain arrays, tested against hand-computed values."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted, float) - np.asarray(actual, float)) ** 2)))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(predicted, float) - np.asarray(actual, float))))


def like_classification(predicted: np.ndarray, actual: np.ndarray, threshold: float = 4.0, cut: float | None = None) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and AUC of "predicted rating >= cut" as a guess that the
    actual rating is >= threshold (a like); ``cut`` defaults to ``threshold``.

    AUC ranks by the predicted rating itself; it is NaN when the truth has one class only.
    """
    predicted, actual = np.asarray(predicted, float), np.asarray(actual, float)
    truth, guess = actual >= threshold, predicted >= (threshold if cut is None else cut)
    tp = float(np.sum(truth & guess))
    precision = tp / guess.sum() if guess.sum() else 0.0
    recall = tp / truth.sum() if truth.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    auc = float(roc_auc_score(truth, predicted)) if 0 < truth.sum() < len(truth) else float("nan")
    return {"accuracy": float(np.mean(truth == guess)), "precision": float(precision), "recall": float(recall), "f1": float(f1), "auc": auc}


def recall_at_k(ranked: np.ndarray, relevant: set[int], k: int) -> float:
    """Share of ``relevant`` found in the first ``k`` of ``ranked`` (hits / |relevant|)."""
    if not relevant:
        raise ValueError("recall is undefined without relevant items")
    hits = sum(1 for x in ranked[:k] if int(x) in relevant)
    return hits / len(relevant)


def ndcg_at_k(ranked: np.ndarray, relevant: set[int], k: int) -> float:
    """Binary-relevance NDCG: DCG of the first ``k`` over the DCG of an ideal ranking."""
    if not relevant:
        raise ValueError("NDCG is undefined without relevant items")
    dcg = sum(1.0 / np.log2(pos + 2) for pos, x in enumerate(ranked[:k]) if int(x) in relevant)
    ideal = sum(1.0 / np.log2(pos + 2) for pos in range(min(k, len(relevant))))
    return float(dcg / ideal)


TIE_ORDER_SEED = 0
"""Seed of the fixed shuffle of columns that orders equal scores in ``top_k``."""


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` highest scores of each row, best first (-inf never wins over finite).

    Equal scores go in the order of a fixed seeded shuffle of the columns, at the cut too: the same
    scores always give the same list, whatever order ``np.partition`` leaves ties in (a model that
    ties, like popularity, would otherwise score differently across numpy builds), and a model that
    ties many movies is not credited with the catalog's own order (low MovieLens ids are the
    well-known 1990s films, so breaking ties by column would rank them first)."""
    order = np.random.default_rng(TIE_ORDER_SEED).permutation(scores.shape[1])
    return order[_top_k_ties_by_column(scores[:, order], k)]


def _top_k_ties_by_column(scores: np.ndarray, k: int) -> np.ndarray:
    """``top_k`` with equal scores in column order."""
    n_rows, n_cols = scores.shape
    k = min(k, n_cols)
    kth = np.partition(scores, n_cols - k, axis=1)[:, n_cols - k][:, None]  # each row's k-th highest score
    above = scores > kth
    ties = scores == kth
    room = k - above.sum(axis=1, keepdims=True)  # how many of the tied scores make the list
    chosen = above | (ties & (np.cumsum(ties, axis=1) <= room))
    cols = np.nonzero(chosen)[1].reshape(n_rows, k)  # exactly k per row, in column order
    order = np.argsort(-np.take_along_axis(scores, cols, axis=1), axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1)


def mean_and_spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    arr = np.asarray(values, float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def t_interval95(values: list[float]) -> tuple[float, float, float]:
    """Mean, sample standard deviation and the half-width of the Student-t 95% interval of the
    mean (sd and half-width nan for a single value)."""
    from scipy import stats

    arr = np.asarray(values, np.float64)
    mean = float(arr.mean())
    if len(arr) < 2:
        return mean, float("nan"), float("nan")
    sd = float(arr.std(ddof=1))
    return mean, sd, float(stats.t.ppf(0.975, len(arr) - 1)) * sd / float(np.sqrt(len(arr)))
