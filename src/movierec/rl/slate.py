"""Slate selection with exploration, and the propensity of every served position.

Position by position, the next movie is drawn from what remains with

    P(movie) = (1 - epsilon) * G(movie) + epsilon / remaining

where ``G`` is the exploiting rule: with ``temperature`` 0, all on the best remaining movie
(epsilon-greedy); with ``temperature`` t > 0, a softmax of the remaining scores divided by t
times their standard deviation (Boltzmann exploration: movies scored near the best are tried
often, poor ones rarely). Measuring t in standard deviations keeps one setting meaningful for
every Q-network: a trained DQN's Q-values for one request's candidates can differ by a few
hundredths, a freshly initialised one's by far more. The
logged propensity of the movie at position p is this probability given the movies above it, so
it is always in (0, 1], and the slate's probability is the product over positions.

Why a temperature: a policy fine-tuned from the served one mostly reorders movies the served
policy also scores highly. Under epsilon-greedy, the served policy puts such a movie first only
by uniform exploration (epsilon / candidates, e.g. 0.0005), so a check can value the candidate on
very few logged positions (``movierec rl fine-tune-study``). Under a softmax they are logged often.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SlateExploration:
    epsilon: float
    """Share of uniform draws over the remaining movies."""
    temperature: float = 0.0
    """0: the rest goes to the best remaining movie; > 0: a softmax of scores / (temperature x
    the remaining scores' standard deviation)."""

    def __post_init__(self):
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")

    def position_distribution(self, scores: np.ndarray, remaining: np.ndarray, best: int) -> np.ndarray:
        """Probability of each movie (0 for those already placed) at the next position."""
        free = remaining.sum()
        out = np.where(remaining, self.epsilon / free, 0.0)
        if self.temperature > 0:
            spread = float(scores[remaining].std())
            z = np.where(remaining, (scores - scores[best]) / (self.temperature * spread) if spread > 0 else 0.0, -np.inf)
            soft = np.exp(z)
            out += (1.0 - self.epsilon) * soft / soft.sum()
        else:
            out[best] += 1.0 - self.epsilon
        return out

    def select(self, scores: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Indices into ``scores`` for a slate of ``min(k, len(scores))`` and their propensities."""
        scores = np.asarray(scores, np.float64)
        n, k = len(scores), min(k, len(scores))
        remaining = np.ones(n, bool)
        order = np.argsort(-scores, kind="stable")
        chosen = np.empty(k, np.int64)
        props = np.empty(k, np.float64)
        for p in range(k):
            best = int(order[remaining[order]][0])
            if self.temperature == 0:  # cheaper, and the same draw as a plain epsilon-greedy rule
                pick = int(rng.choice(np.flatnonzero(remaining))) if self.epsilon > 0 and rng.random() < self.epsilon else best
                props[p] = (1.0 - self.epsilon) * (pick == best) + self.epsilon / remaining.sum()
            else:
                dist = self.position_distribution(scores, remaining, best)
                pick = int(rng.choice(n, p=dist / dist.sum()))
                props[p] = dist[pick]
            chosen[p] = pick
            remaining[pick] = False
        return chosen, props

    def propensities(self, scores: np.ndarray, slate: np.ndarray) -> np.ndarray:
        """Probability that this rule with these scores puts ``slate[p]`` at position p given
        ``slate[:p]`` above it (the same rule as ``select``)."""
        scores = np.asarray(scores, np.float64)
        remaining = np.ones(len(scores), bool)
        order = np.argsort(-scores, kind="stable")
        out = np.empty(len(slate), np.float64)
        for p, pick in enumerate(slate):
            best = int(order[remaining[order]][0])
            out[p] = self.position_distribution(scores, remaining, best)[pick]
            remaining[pick] = False
        return out
