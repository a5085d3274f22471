"""Slate selection with exploration, and the propensity of every served position.

Sequential epsilon-greedy: position by position, take the best remaining candidate with
probability ``1 - epsilon``, else a uniformly random remaining one. The logged propensity of the
movie at position p is its probability of being chosen there given the movies above it:

    propensity = (1 - epsilon) * [movie is the best remaining] + epsilon / remaining

so it is always in (0, 1], and the slate's probability is the product over positions.
"""

from __future__ import annotations

import numpy as np


def epsilon_greedy_slate(scores: np.ndarray, k: int, epsilon: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``scores`` for a slate of ``min(k, len(scores))`` and their propensities."""
    n = len(scores)
    k = min(k, n)
    remaining = np.ones(n, bool)
    order = np.argsort(-scores, kind="stable")
    chosen = np.empty(k, np.int64)
    props = np.empty(k, np.float64)
    for p in range(k):
        free = np.flatnonzero(remaining)
        best = order[remaining[order]][0]
        pick = int(rng.choice(free)) if epsilon > 0 and rng.random() < epsilon else int(best)
        chosen[p] = pick
        props[p] = (1.0 - epsilon) * (pick == best) + epsilon / len(free)
        remaining[pick] = False
    return chosen, props


def slate_position_propensities(scores: np.ndarray, slate: np.ndarray, epsilon: float) -> np.ndarray:
    """Probability that an epsilon-greedy policy with these scores puts ``slate[p]`` at position p
    given ``slate[:p]`` above it (the same rule as ``epsilon_greedy_slate``)."""
    n = len(scores)
    remaining = np.ones(n, bool)
    order = np.argsort(-scores, kind="stable")
    out = np.empty(len(slate), np.float64)
    for p, pick in enumerate(slate):
        free = int(remaining.sum())
        best = order[remaining[order]][0]
        out[p] = (1.0 - epsilon) * (pick == best) + epsilon / free
        remaining[pick] = False
    return out
