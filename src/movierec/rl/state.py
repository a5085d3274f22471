"""What a policy observes, as vectors: the state and the per-candidate inputs of the Q-network.

State: the user's embedding, the embeddings of the last ``history`` movies watched (newest first,
zeros when fewer), the genre histogram of those movies, and session context (step, share of
skipped slates, last watched fraction and rating, movies watched).

Per candidate: its embedding, its product with the user's embedding, the ranker's score and rank,
its genres, how much they overlap the recent history, its runtime and popularity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from movierec.rl.items import ItemTable

CONTEXT_FEATURES = 5


@dataclass
class Observation:
    """The observable part of a session, kept by whoever serves the slates."""

    user_vector: np.ndarray
    history: list[int] = field(default_factory=list)  # item rows watched, oldest first
    step: int = 0
    skips: int = 0
    last_fraction: float = 0.0
    last_rating: float | None = None

    def record(self, movie_row: int | None, watch_fraction: float, rating: float | None) -> None:
        self.step += 1
        if movie_row is None:
            self.skips += 1
            return
        self.history.append(int(movie_row))
        self.last_fraction = float(watch_fraction)
        self.last_rating = rating


class Featurizer:
    def __init__(self, items: ItemTable, history: int = 5, max_steps: int = 40, stats: dict | None = None):
        """``stats``: the runtime and popularity normalisation of the table the policy was trained on
        (a served policy's table may hold more movies than the simulator's)."""
        self.items = items
        self.history = history
        self.max_steps = max_steps
        d, g = items.dim, items.genres.shape[1]
        self.dim, self.n_genres = d, g
        self.genre_offset = d * (1 + history)
        self.state_dim = self.genre_offset + g + CONTEXT_FEATURES
        self.item_dim = 2 * d + 2 + g + 3
        self._log_runtime = np.log(items.runtime)
        self._log_pop = np.log1p(items.popularity.astype(np.float64))
        if stats is None:
            stats = {"runtime": (float(self._log_runtime.mean()), float(self._log_runtime.std() + 1e-6)),
                     "popularity": (float(self._log_pop.mean()), float(self._log_pop.std() + 1e-6))}
        self._runtime_stats = tuple(stats["runtime"])
        self._pop_stats = tuple(stats["popularity"])

    @property
    def stats(self) -> dict:
        return {"runtime": list(self._runtime_stats), "popularity": list(self._pop_stats)}

    def state(self, obs: Observation) -> np.ndarray:
        d, h = self.dim, self.history
        out = np.zeros(self.state_dim, np.float32)
        out[:d] = obs.user_vector
        recent = obs.history[-h:][::-1]
        for j, row in enumerate(recent):
            out[d * (1 + j): d * (2 + j)] = self.items.vectors[row]
        if recent:
            out[self.genre_offset: self.genre_offset + self.n_genres] = self.items.genres[recent].sum(0) / h
        steps = max(obs.step, 1)
        out[-CONTEXT_FEATURES:] = (
            obs.step / self.max_steps,
            obs.skips / steps,
            obs.last_fraction,
            0.0 if obs.last_rating is None else (obs.last_rating - 3.0) / 2.0,
            len(obs.history) / 10.0,
        )
        return out

    def item_inputs(self, states: np.ndarray, rows: np.ndarray, scores: np.ndarray, ranks: np.ndarray, top_n: int) -> np.ndarray:
        """Per-candidate inputs, shape (B, M, item_dim), for states (B, S) and rows/scores/ranks (B, M)."""
        d, it = self.dim, self.items
        user = states[:, None, :d]
        vec = it.vectors[rows]
        genres = it.genres[rows]
        hist = states[:, None, self.genre_offset: self.genre_offset + self.n_genres]
        overlap = (genres * hist).sum(-1, keepdims=True) / np.maximum(genres.sum(-1, keepdims=True), 1.0)
        runtime = (self._log_runtime[rows] - self._runtime_stats[0]) / self._runtime_stats[1]
        pop = (self._log_pop[rows] - self._pop_stats[0]) / self._pop_stats[1]
        parts = [vec, user * vec, scores[..., None], (ranks / top_n)[..., None], genres, overlap * 5.0, runtime[..., None], pop[..., None]]
        return np.concatenate([np.asarray(p, np.float32) for p in parts], axis=-1)
