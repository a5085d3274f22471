"""Run policies on simulated sessions in lock-step (one batched decision per step) and measure them.

Metrics of a run: average session watch time (minutes), CTR (slates with a click / slates),
average rating of what was watched, session length (slates), long-tail share (watched movies
outside the most popular ``long_tail_head_share`` of the catalog) and catalog coverage (share of
the catalog shown at least once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from movierec.rl.simulator import SimulatedSession, StepOutcome
from movierec.rl.state import Featurizer, Observation
from movierec.rl.world import World


@dataclass
class SessionView:
    """One live session as a policy sees it (the simulator's session is for the runner only)."""

    user_index: int
    obs: Observation
    state: np.ndarray
    cand_rows: np.ndarray
    cand_scores: np.ndarray
    watched: set[int] = field(default_factory=set)


class Policy(Protocol):
    name: str

    def select(self, views: list[SessionView], rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each view, the slate (item rows) and each position's propensity."""

    def observe(self, view: SessionView, slate: np.ndarray, outcome: StepOutcome, reward: float) -> None:
        """Learn online from one step (bandits); other policies ignore it."""


@dataclass
class RunMetrics:
    watch_time: float
    ctr: float
    rating: float
    session_length: float
    long_tail_share: float
    coverage: float
    sessions: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Transition:
    state: np.ndarray
    rows: np.ndarray  # chosen row (1,) or the whole skipped slate
    ranks: np.ndarray
    scores: np.ndarray
    reward: float
    done: bool
    next_state: np.ndarray
    next_rows: np.ndarray
    next_scores: np.ndarray


def _view(world: World, f: Featurizer, user_index: int, obs: Observation, watched: set[int]) -> SessionView:
    rows, scores = world.candidates(user_index, watched)
    return SessionView(user_index, obs, f.state(obs), rows, scores, watched)


def run_sessions(
    world: World,
    featurizer: Featurizer,
    policy,
    user_indices: np.ndarray,
    *,
    sessions_per_user: int,
    seed: int,
    parallel: int = 32,
    reward_fn: Callable[[StepOutcome], float] | None = None,
    on_transition: Callable[[Transition], None] | None = None,
    on_iteration: Callable[[int], None] | None = None,
    on_session_end: Callable[[SimulatedSession], None] | None = None,
    max_iterations: int | None = None,
) -> RunMetrics:
    """Serve ``sessions_per_user`` sessions to each user; the simulator is seeded per (seed, user, session)."""
    queue = [(int(u), s) for s in range(sessions_per_user) for u in user_indices]
    queue.reverse()
    policy_rng = np.random.default_rng([seed, 7])
    sim = world.simulator
    live: list[tuple[SimulatedSession, SessionView]] = []
    watch, steps, clicks, ratings, shown, watched_rows = [], 0, 0, [], set(), []
    lengths = []
    iteration = 0

    def start() -> None:
        u, s = queue.pop()
        session = sim.new_session(u, np.random.default_rng([seed, u, s]))
        live.append((session, _view(world, featurizer, u, Observation(world.user_vectors[u]), set())))

    while queue or live:
        while queue and len(live) < parallel:
            start()
        if max_iterations is not None and iteration >= max_iterations:
            break
        views = [v for _, v in live]
        choices = policy.select(views, policy_rng)
        survivors = []
        for (session, view), (slate, _props) in zip(live, choices):
            outcome = session.step(world.candidate_rows[0][:0] if len(slate) == 0 else slate)
            reward = reward_fn(outcome) if reward_fn else 0.0
            policy.observe(view, slate, outcome, reward)
            steps += 1
            shown.update(int(r) for r in slate)
            watched = set(view.watched)
            if outcome.clicked:
                clicks += 1
                ratings.append(outcome.rating)
                watched_rows.append(outcome.movie_row)
                watched.add(outcome.movie_row)
            obs = Observation(view.obs.user_vector, list(view.obs.history), view.obs.step, view.obs.skips, view.obs.last_fraction, view.obs.last_rating)
            fraction = outcome.watch_minutes / float(world.items.runtime[outcome.movie_row]) if outcome.clicked else 0.0
            obs.record(outcome.movie_row, fraction, outcome.rating)
            nxt = _view(world, featurizer, view.user_index, obs, watched)
            if on_transition is not None:
                rank_of = {int(r): i for i, r in enumerate(view.cand_rows)}
                acted = np.array([outcome.movie_row]) if outcome.clicked else np.asarray(slate)
                ranks = np.array([rank_of.get(int(r), len(view.cand_rows)) for r in acted], np.float32)
                scores = np.array([world.items.vectors[r] @ view.obs.user_vector + world.items.bias[r] for r in acted], np.float32)
                on_transition(Transition(view.state, acted, ranks, scores, reward, outcome.done, nxt.state, nxt.cand_rows, nxt.cand_scores))
            if outcome.done:
                watch.append(session.watch_minutes)
                lengths.append(session.steps)
                if on_session_end is not None:
                    on_session_end(session)
            else:
                survivors.append((session, nxt))
        live = survivors
        iteration += 1
        if on_iteration is not None:
            on_iteration(iteration)
    tail = [not world.head[r] for r in watched_rows]
    return RunMetrics(
        watch_time=float(np.mean(watch)) if watch else 0.0,
        ctr=clicks / max(steps, 1),
        rating=float(np.mean(ratings)) if ratings else 0.0,
        session_length=float(np.mean(lengths)) if lengths else 0.0,
        long_tail_share=float(np.mean(tail)) if tail else 0.0,
        coverage=len(shown) / len(world.items),
        sessions=len(watch),
    )
