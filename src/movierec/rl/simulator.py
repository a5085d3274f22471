"""The user simulator: RecSim interest-evolution in spirit, grounded in MovieLens.

Each simulated user is a real MovieLens user. Their hidden taste is an oracle's predicted rating
for every movie (a factorisation fitted on ALL their ratings; policies never see it). A step:

1. the user looks at a slate and picks one movie or nothing (multinomial logit over
   ``enjoyment - position_penalty * position`` and a no-click option);
2. enjoyment = oracle rating - boredom_weight * mean boredom of the movie's genres;
3. they watch a fraction of the movie's runtime that grows with enjoyment (a noisy sigmoid) and
   rate it (enjoyment plus noise, rounded to half stars);
4. interest evolves: the watched genres move towards boredom, all boredom fades a little each step;
5. the time budget pays for what was watched (or for browsing a skipped slate), and a good movie
   extends it (a bad one shortens it) by ``extension_minutes_per_star`` per star from neutral.

The session ends when the budget is spent or after ``max_steps`` slates. Everything is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.rl.config import SimulatorConfig
from movierec.rl.items import ItemTable


@dataclass
class StepOutcome:
    choice: int | None  # slate position chosen, None for no click
    movie_row: int | None
    watch_minutes: float
    rating: float | None
    done: bool

    @property
    def clicked(self) -> bool:
        return self.choice is not None


class SimulatedSession:
    """One session of one user; ``step`` takes a slate of item-table rows."""

    def __init__(self, simulator: "UserSimulator", user_index: int, rng: np.random.Generator):
        cfg = simulator.config
        self.sim = simulator
        self.user_index = user_index
        self.user_id = int(simulator.user_ids[user_index])
        self.rng = rng
        self.budget = float(cfg.session_budget_minutes * np.exp(cfg.budget_spread * rng.standard_normal() - cfg.budget_spread**2 / 2))
        self.boredom = np.zeros(simulator.items.genres.shape[1], np.float64)
        self.steps = 0
        self.watch_minutes = 0.0
        self.done = False

    def enjoyment(self, rows: np.ndarray) -> np.ndarray:
        """Expected rating of each movie right now: hidden taste minus genre boredom."""
        g = self.sim.items.genres[rows]
        bored = (g @ self.boredom) / np.maximum(g.sum(1), 1.0)
        return self.sim.taste[self.user_index, rows] - self.sim.config.boredom_weight * bored

    def choice_probabilities(self, slate: np.ndarray) -> np.ndarray:
        """Probability of choosing each slate position, then (last entry) of choosing nothing."""
        cfg = self.sim.config
        util = self.enjoyment(slate) - cfg.position_penalty * np.arange(len(slate))
        logits = np.append(util, cfg.no_click_utility) / cfg.choice_temperature
        p = np.exp(logits - logits.max())
        return p / p.sum()

    def step(self, slate) -> StepOutcome:
        if self.done:
            raise RuntimeError("session is over")
        cfg = self.sim.config
        slate = np.asarray(slate, np.int64)
        p = self.choice_probabilities(slate)
        pick = int(self.rng.choice(len(p), p=p))
        self.steps += 1
        self.boredom *= 1.0 - cfg.boredom_decay
        if pick == len(slate):
            self.budget -= cfg.browse_minutes
            outcome = StepOutcome(None, None, 0.0, None, False)
        else:
            row = int(slate[pick])
            enjoy = float(self.enjoyment(np.array([row]))[0])
            frac = 1.0 / (1.0 + np.exp(-(enjoy - cfg.watch_midpoint) / cfg.watch_scale)) + cfg.watch_noise * self.rng.standard_normal()
            minutes = float(np.clip(frac, 0.02, 1.0) * self.sim.items.runtime[row])
            minutes = min(minutes, max(self.budget, 0.0))  # the user stops when their time is up
            rating = float(np.clip(np.round(2 * (enjoy + cfg.rating_noise * self.rng.standard_normal())) / 2, 0.5, 5.0))
            g = self.sim.items.genres[row] > 0
            self.boredom[g] += cfg.boredom_gain * (1.0 - self.boredom[g])
            self.budget += cfg.extension_minutes_per_star * (rating - cfg.neutral_rating) - minutes
            self.watch_minutes += minutes
            outcome = StepOutcome(pick, row, minutes, rating, False)
        self.done = self.budget <= 0 or self.steps >= cfg.max_steps
        outcome.done = self.done
        return outcome


class UserSimulator:
    """Holds the hidden taste of every simulated user over the item table."""

    def __init__(self, config: SimulatorConfig, items: ItemTable, user_ids: np.ndarray, taste: np.ndarray):
        if taste.shape != (len(user_ids), len(items)):
            raise ValueError(f"taste must be (users, items) = ({len(user_ids)}, {len(items)}), got {taste.shape}")
        self.config = config
        self.items = items
        self.user_ids = np.asarray(user_ids, np.int64)
        self.taste = np.clip(np.asarray(taste, np.float64), 0.5, 5.0)

    def user_index(self, user_id: int) -> int:
        i = int(np.searchsorted(self.user_ids, user_id))
        if i >= len(self.user_ids) or self.user_ids[i] != user_id:
            raise KeyError(f"user {user_id} is not simulated")
        return i

    def new_session(self, user_index: int, rng: np.random.Generator) -> SimulatedSession:
        return SimulatedSession(self, user_index, rng)
