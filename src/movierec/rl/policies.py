"""Slate policies: the DQN re-ranker and the baselines it is compared with in the same runs.

- ``greedy``: the ranker's top-k (myopic: the best predicted score right now).
- ``random``: k movies uniformly from the catalog the user has not seen.
- ``random_rerank``: k movies uniformly from the ranker's top-N candidates.
- ``popularity``: the k most rated unseen movies.
- ``linucb``: a shared-parameter LinUCB bandit on the candidate features, learning online.
- ``dqn``: the double-DQN re-ranker, exploring only as told (epsilon-greedy while training; the
  benchmark values it once without exploration and once with the serving exploration).
"""

from __future__ import annotations

import numpy as np

from movierec.rl.dqn import DQNLearner
from movierec.rl.rollout import SessionView
from movierec.rl.simulator import StepOutcome
from movierec.rl.slate import SlateExploration
from movierec.rl.state import Featurizer
from movierec.rl.world import World


class _Passive:
    def observe(self, view: SessionView, slate: np.ndarray, outcome: StepOutcome, reward: float) -> None:
        return None


class GreedyPolicy(_Passive):
    name = "greedy"

    def __init__(self, slate_size: int):
        self.k = slate_size

    def select(self, views, rng):
        return [(v.cand_rows[: self.k], np.ones(min(self.k, len(v.cand_rows)))) for v in views]


class RandomRerankPolicy(_Passive):
    name = "random_rerank"

    def __init__(self, slate_size: int):
        self.k = slate_size

    def select(self, views, rng):
        out = []
        for v in views:
            k = min(self.k, len(v.cand_rows))
            out.append((rng.choice(v.cand_rows, size=k, replace=False), 1.0 / (len(v.cand_rows) - np.arange(k))))
        return out


class RandomCatalogPolicy(_Passive):
    name = "random"

    def __init__(self, world: World, slate_size: int):
        self.world, self.k = world, slate_size

    def select(self, views, rng):
        out = []
        n = len(self.world.items)
        for v in views:
            allowed = ~self.world.seen[v.user_index]
            slate: list[int] = []
            while len(slate) < self.k:
                r = int(rng.integers(n))
                if allowed[r] and r not in v.watched and r not in slate:
                    slate.append(r)
            free = int(allowed.sum()) - len(v.watched)
            out.append((np.array(slate), 1.0 / (free - np.arange(self.k))))
        return out


class PopularityPolicy(_Passive):
    name = "popularity"

    def __init__(self, world: World, slate_size: int):
        self.world, self.k = world, slate_size
        self.order = np.argsort(-world.items.popularity, kind="stable")

    def select(self, views, rng):
        out = []
        for v in views:
            seen = self.world.seen[v.user_index]
            slate = [int(r) for r in self.order[~seen[self.order]][: self.k + len(v.watched)] if r not in v.watched][: self.k]
            out.append((np.array(slate), np.ones(len(slate))))
        return out


class LinUCBPolicy:
    """Shared LinUCB: reward ~ theta . x(candidate) with an upper-confidence bonus; updated per shown movie."""

    name = "linucb"

    def __init__(self, featurizer: Featurizer, slate_size: int, top_n: int, alpha: float = 0.5, ridge: float = 1.0):
        self.f, self.k, self.top_n, self.alpha = featurizer, slate_size, top_n, alpha
        dim = featurizer.item_dim + 1
        self.A = ridge * np.eye(dim)
        self.b = np.zeros(dim)
        self._A_inv = np.linalg.inv(self.A)
        self._pending = 0

    def _x(self, states, rows, scores):
        ranks = np.broadcast_to(np.arange(rows.shape[-1], dtype=np.float32), rows.shape)
        x = self.f.item_inputs(states, rows, scores, ranks, self.top_n)
        return np.concatenate([x, np.ones(x.shape[:-1] + (1,), np.float32)], -1).astype(np.float64)

    def select(self, views, rng):
        theta = self._A_inv @ self.b
        n = max(len(v.cand_rows) for v in views)
        rows = np.stack([np.resize(v.cand_rows, n) for v in views])
        scores = np.stack([np.resize(v.cand_scores, n) for v in views])
        x = self._x(np.stack([v.state for v in views]), rows, scores)
        ucb = x @ theta + self.alpha * np.sqrt(np.maximum(((x @ self._A_inv) * x).sum(-1), 0))
        out = []
        for i, v in enumerate(views):
            top = np.argsort(-ucb[i, : len(v.cand_rows)], kind="stable")[: self.k]
            out.append((v.cand_rows[top], np.ones(len(top))))
        return out

    def observe(self, view, slate, outcome, reward):
        rank_of = {int(r): i for i, r in enumerate(view.cand_rows)}
        pos = np.array([rank_of[int(r)] for r in slate])
        x = self._x(view.state[None], view.cand_rows[None, pos], view.cand_scores[None, pos])[0]
        r = np.array([reward if outcome.choice == j else 0.0 for j in range(len(x))])
        self.A += x.T @ x
        self.b += x.T @ r
        self._pending += 1
        if self._pending >= 32:  # refresh the inverse every few steps: the bonus changes slowly
            self._A_inv = np.linalg.inv(self.A)
            self._pending = 0


class DQNPolicy(_Passive):
    name = "dqn"

    def __init__(self, learner: DQNLearner, slate_size: int, exploration: SlateExploration = SlateExploration(0.0)):
        self.learner, self.k, self.exploration = learner, slate_size, exploration

    def select(self, views, rng):
        n = max(len(v.cand_rows) for v in views)
        rows = np.zeros((len(views), n), np.int64)
        scores = np.zeros((len(views), n), np.float32)
        for i, v in enumerate(views):
            rows[i, : len(v.cand_rows)], scores[i, : len(v.cand_rows)] = v.cand_rows, v.cand_scores
        q = self.learner.q_values(np.stack([v.state for v in views]), rows, scores)
        out = []
        for i, v in enumerate(views):
            idx, props = self.exploration.select(q[i, : len(v.cand_rows)], self.k, rng)
            out.append((v.cand_rows[idx], props))
        return out
