"""Simulated people for load tests: the RL issue's user model decides what a Locust user clicks,
how long they watch and how they rate.

The hidden taste is the RL simulator's oracle (a factorisation of ALL ratings, cached under
``<models_dir>/rl/cache`` and shared with ``movierec rl``), so a load test and the RL benchmark
simulate the same people. Movies outside the simulated catalog (fewer than
``min_item_ratings`` ratings) are never chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.data import load_dataset
from movierec.rl.config import ExperimentConfig
from movierec.rl.factorization import predict_rating_matrix
from movierec.rl.items import GENRES, build_item_table
from movierec.rl.simulator import SimulatedSession, UserSimulator
from movierec.rl.world import fit_oracle
from movierec.settings import Settings


@dataclass(frozen=True)
class Reaction:
    movie_id: int
    position: int
    """Position in the list as served."""
    watch_seconds: float
    rating: float


@dataclass
class SimulatedAudience:
    simulator: UserSimulator
    popular_movie_ids: list[int]
    """The simulated catalog's most rated movies: what a new user is likely to know and like."""
    titles_words: list[str]
    genres: tuple[str, ...] = GENRES

    def start_session(self, rng: np.random.Generator) -> SimulatedSession:
        return self.simulator.new_session(int(rng.integers(len(self.simulator.user_ids))), rng)

    def react(self, session: SimulatedSession, served_movie_ids: list[int]) -> Reaction | None:
        """One step of the session on the served list; None when the user chooses nothing."""
        rows = self.simulator.items.index_of(served_movie_ids)
        known = [(pos, int(row)) for pos, row in enumerate(rows) if row >= 0][: self.simulator.config.slate_size]
        if not known:
            return None
        outcome = session.step(np.array([row for _, row in known], np.int64))
        if outcome.choice is None:
            return None
        position = known[outcome.choice][0]
        return Reaction(movie_id=int(served_movie_ids[position]), position=position,
                        watch_seconds=round(outcome.watch_minutes * 60.0, 1), rating=float(outcome.rating))


def load_audience(settings: Settings | None = None, config: ExperimentConfig | None = None) -> SimulatedAudience:
    settings = settings or Settings()
    config = config or ExperimentConfig()
    ds = load_dataset(settings)
    oracle = fit_oracle(settings, ds, config)
    items = build_item_table(ds, oracle, ds.ratings, min_ratings=config.min_item_ratings,
                             default_runtime=config.simulator.default_runtime_minutes)
    users = oracle.user_ids  # the simulated users, every one of whom rated
    taste = predict_rating_matrix(oracle, users, items.movie_ids)
    popular = items.movie_ids[np.argsort(-items.popularity, kind="stable")[:200]]
    words = sorted({w for t in ds.catalog.loc[popular, "title"] for w in str(t).split() if w.isalpha() and len(w) > 3})
    return SimulatedAudience(UserSimulator(config.simulator, items, users, taste), [int(m) for m in popular], words)
