"""Off-policy value estimates from logged slates: IPS and self-normalised IPS (SNIPS).

Each logged unit is one (served slate, position): the reward the user gave the movie at that
position (its step reward if they chose it, else 0), the probability the logging policy had of
putting it there (given the movies above it) and the probability the target policy has of doing
the same. Treating positions as separate units assumes rewards add up over positions (the usual
item-position assumption); the weights are per-position ratios, not whole-slate products, which
keeps their variance usable for slates of several movies.
"""

from __future__ import annotations

import numpy as np


def importance_weights(target_propensities, logging_propensities) -> np.ndarray:
    target = np.asarray(target_propensities, np.float64)
    logging = np.asarray(logging_propensities, np.float64)
    if target.shape != logging.shape:
        raise ValueError(f"target {target.shape} and logging {logging.shape} propensities differ in shape")
    if np.any(logging <= 0) or np.any(logging > 1):
        raise ValueError("logging propensities must be in (0, 1]")
    if np.any(target < 0) or np.any(target > 1):
        raise ValueError("target propensities must be in [0, 1]")
    return target / logging


def ips(rewards, target_propensities, logging_propensities) -> float:
    """Inverse propensity scoring: mean of w * r, unbiased when the logging policy covers the target."""
    w = importance_weights(target_propensities, logging_propensities)
    r = np.asarray(rewards, np.float64)
    return float(np.mean(w * r)) if len(r) else 0.0


def snips(rewards, target_propensities, logging_propensities) -> float:
    """Self-normalised IPS: sum(w * r) / sum(w); slightly biased, much lower variance."""
    w = importance_weights(target_propensities, logging_propensities)
    r = np.asarray(rewards, np.float64)
    total = w.sum()
    return float((w * r).sum() / total) if total > 0 else 0.0


def effective_sample_size(target_propensities, logging_propensities) -> float:
    """(sum w)^2 / sum w^2: how many equally weighted units the weighted ones are worth (the
    number of units when the target policy is the logging one; near 1 when one unit carries
    nearly all the weight). 0 without weight."""
    w = importance_weights(target_propensities, logging_propensities)
    square = float((w * w).sum())
    return float(w.sum()) ** 2 / square if square > 0 else 0.0


def clipped_units(units: np.ndarray, cap: float) -> np.ndarray:
    """Units (reward, target propensity, logging propensity) whose weight is capped at ``cap``
    (clipped importance sampling: bias traded for variance; the target propensity is lowered so
    that target / logging <= cap, so every estimate above reads the capped weights)."""
    if cap <= 0:
        raise ValueError(f"the weight cap must be positive, got {cap}")
    out = np.array(units, np.float64, copy=True).reshape(-1, 3)
    out[:, 1] = np.minimum(out[:, 1], cap * out[:, 2])
    return out
