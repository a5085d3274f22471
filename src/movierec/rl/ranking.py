"""Re-rank one request's candidates with a policy artifact (the policy service's core, no HTTP).

``PolicyRanker.rank`` validates ids and dimensions (raising ``RankInputError`` with a message a
client can act on), builds the state from the user's vector and recent movies, scores every
candidate with the Q-network and serves a slate with its serving exploration (``movierec.rl.slate``)
and each position's propensity.
Without a policy, ``greedy_order`` passes the ranker's order through.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.rl.artifact import PolicyArtifact
from movierec.rl.state import Featurizer, Observation

GREEDY_VERSION = "greedy"


class RankInputError(ValueError):
    """A request the policy cannot rank; ``field`` names the offending input."""

    def __init__(self, field: str, message: str, status: int = 422):
        super().__init__(message)
        self.field = field
        self.status = status


@dataclass
class RankedMovie:
    movie_id: int
    q_value: float
    propensity: float


def _check_candidates(movie_ids: list[int]) -> None:
    if not movie_ids:
        raise RankInputError("candidates", "candidates is empty: send at least one movie to rank")
    if len(set(movie_ids)) != len(movie_ids):
        dup = sorted({m for m in movie_ids if movie_ids.count(m) > 1})[:10]
        raise RankInputError("candidates", f"duplicate candidate movie ids: {dup}")


def greedy_order(movie_ids: list[int], scores: list[float], k: int) -> list[RankedMovie]:
    """The ranker's order (by score, stable), deterministic: every propensity is 1."""
    _check_candidates(movie_ids)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")[:k]
    return [RankedMovie(int(movie_ids[i]), float(scores[i]), 1.0) for i in order]


class PolicyRanker:
    def __init__(self, artifact: PolicyArtifact):
        self.artifact = artifact
        self.version = artifact.version
        self.featurizer = artifact.featurizer()
        self.learner = artifact.learner()
        self.exploration = artifact.config.dqn.serving_exploration
        self.top_n = artifact.config.dqn.top_n

    @property
    def dim(self) -> int:
        return self.artifact.items.dim

    def user_vector(self, user_id: int | None, user_vector: list[float] | None) -> np.ndarray:
        if user_vector is not None:
            if len(user_vector) != self.dim:
                raise RankInputError("user_vector", f"user_vector has {len(user_vector)} dimensions; this policy expects {self.dim}")
            vec = np.asarray(user_vector, np.float32)
            if not np.all(np.isfinite(vec)):
                raise RankInputError("user_vector", "user_vector contains a non-finite number")
            return vec
        if user_id is None:
            raise RankInputError("user_id", "send user_id (a known user) or user_vector (a new user)")
        vec = self.artifact.user_vector(user_id)
        if vec is None:
            raise RankInputError("user_id", f"unknown user_id {user_id}: send user_vector for a user this policy has not seen", status=404)
        return vec

    def rows(self, field: str, movie_ids: list[int]) -> np.ndarray:
        rows = self.artifact.items.index_of(movie_ids)
        unknown = [int(m) for m, r in zip(movie_ids, rows) if r < 0]
        if unknown:
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise RankInputError(field, f"unknown movie ids in {field}: {unknown[:10]}{more}")
        return rows

    def rank(self, *, user_id: int | None, user_vector: list[float] | None, recent_movie_ids: list[int],
             movie_ids: list[int], scores: list[float], k: int, session_step: int, rng: np.random.Generator) -> list[RankedMovie]:
        _check_candidates(movie_ids)
        vec = self.user_vector(user_id, user_vector)
        cand = self.rows("candidates", movie_ids)
        history = self.rows("recent_movie_ids", recent_movie_ids) if recent_movie_ids else np.zeros(0, np.int64)
        state = request_state(self.featurizer, vec, history, session_step)
        scores = np.asarray(scores, np.float32)
        q = self.learner.q_values(state[None], cand[None], scores[None], score_ranks(scores)[None])[0]
        chosen, props = self.exploration.select(q, k, rng)
        return [RankedMovie(int(movie_ids[i]), float(q[i]), float(p)) for i, p in zip(chosen, props)]


def request_state(featurizer: Featurizer, user_vector: np.ndarray, history_rows: np.ndarray, session_step: int) -> np.ndarray:
    """The state the policy service sees for one request: the user, the recent movies it was sent
    (their watch fractions unknown: taken as fully watched) and the session step."""
    history = [int(r) for r in history_rows]
    return featurizer.state(Observation(user_vector, history=history, step=session_step, last_fraction=1.0 if history else 0.0))


def score_ranks(scores: np.ndarray) -> np.ndarray:
    """Each candidate's rank in the ranker's order (by score, stable), as the Q-network reads it."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    ranks = np.empty(len(order), np.float32)
    ranks[order] = np.arange(len(order))
    return ranks
