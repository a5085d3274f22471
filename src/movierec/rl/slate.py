"""Slate selection with exploration, and the propensity of every served position.

Position by position, the next movie is drawn from what remains with

    P(movie) = (1 - epsilon) * G(movie) + epsilon / remaining

where ``G`` is the exploiting rule: with ``temperature`` 0, all on the best remaining movie
(epsilon-greedy); with ``temperature`` t > 0, a softmax of the remaining scores divided by t
times their standard deviation (Boltzmann exploration: movies scored near the best are tried
often, poor ones rarely). Measuring t in standard deviations keeps one setting meaningful for
every Q-network: a trained DQN's Q-values for one request's candidates can differ by a few
hundredths, a freshly initialised one's by far more. The logged propensity of the movie at
position p is this probability given the movies above it, so it is always in (0, 1], and the
slate's probability is the product over positions.

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

    def next_distribution(self, scores_left: np.ndarray) -> np.ndarray:
        """Probability of each movie still unplaced (``scores_left``, in candidate order) at the
        next position. The best is the first of equal top scores, as a stable sort puts first."""
        n = len(scores_left)
        if self.temperature > 0:
            return _softmax_mix(scores_left, self.temperature, self.epsilon)
        out = np.zeros(n)
        out[int(np.argmax(scores_left))] = 1.0 - self.epsilon
        return out + self.epsilon / n

    def select(self, scores: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Indices into ``scores`` for a slate of ``min(k, len(scores))`` and their propensities."""
        scores = np.asarray(scores, np.float64)
        k = min(k, len(scores))
        chosen = np.empty(k, np.int64)
        props = np.empty(k, np.float64)
        if self.temperature == 0:  # cheaper, and the same draws as a plain epsilon-greedy rule
            left = np.arange(len(scores))
            for p in range(k):
                best = int(np.argmax(scores[left]))
                j = int(rng.choice(len(left))) if self.epsilon > 0 and rng.random() < self.epsilon else best
                props[p] = (1.0 - self.epsilon) * (j == best) + self.epsilon / len(left)
                chosen[p] = left[j]
                left = np.delete(left, j)
            return chosen, props
        left, s = list(range(len(scores))), scores  # unplaced movies and their scores, in candidate order
        for p in range(k):
            dist = _softmax_mix(s, self.temperature, self.epsilon)
            cumulative = dist.cumsum()
            j = min(int(cumulative.searchsorted(rng.random() * cumulative[-1], side="right")), len(left) - 1)
            props[p] = dist[j]
            chosen[p] = left.pop(j)
            s = np.concatenate((s[:j], s[j + 1:]))
        return chosen, props

    def propensities(self, scores: np.ndarray, slate: np.ndarray) -> np.ndarray:
        """Probability that this rule with these scores puts ``slate[p]`` at position p given
        ``slate[:p]`` above it (the same rule as ``select``)."""
        scores = np.asarray(scores, np.float64)
        left = np.arange(len(scores))
        out = np.empty(len(slate), np.float64)
        for p, pick in enumerate(slate):
            j = int(np.searchsorted(left, pick))
            out[p] = self.next_distribution(scores[left])[j]
            left = np.delete(left, j)
        return out


_add, _multiply, _exp = np.add.reduce, np.multiply, np.exp


def _softmax_mix(scores: np.ndarray, temperature: float, epsilon: float) -> np.ndarray:
    """``(1 - epsilon)`` times a softmax of ``scores`` / (``temperature`` x their standard
    deviation), plus ``epsilon`` spread evenly (uniform if all scores are equal). Called once per
    served position, so it uses the ufuncs directly: the same arithmetic as ``np.std`` and
    ``np.exp``, bit for bit, without their Python-level overhead."""
    n = len(scores)
    top = scores.max()
    centred = scores - _add(scores) / n
    spread = np.sqrt(_add(_multiply(centred, centred)) / n)
    if spread > 0:
        soft = _exp((scores - top) / (temperature * spread))
        return (1.0 - epsilon) / _add(soft) * soft + epsilon / n
    return np.full(n, (1.0 - epsilon) / n + epsilon / n)
