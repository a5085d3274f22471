"""A tiny synthetic world (40 users, 120 movies, genre-structured taste) and a briefly trained
policy on it: for fast RL tests and for fault drills that need a published DQN in seconds.

Nothing here reads ``var/``: the world is drawn from a seed, so any process can rebuild it.
"""

from __future__ import annotations

import numpy as np

from movierec.rl.artifact import PolicyArtifact, artifact_from_learner
from movierec.rl.config import DQNConfig, ExperimentConfig, SimulatorConfig
from movierec.rl.items import GENRES, ItemTable
from movierec.rl.simulator import UserSimulator
from movierec.rl.world import World


def make_tiny_world(seed: int = 0, n_users: int = 40, n_items: int = 120, dim: int = 8, *, iterations: int = 300,
                    **sim_overrides) -> World:
    """Users 1..n_users and movies 1..n_items; ``iterations`` is the DQN training budget on it."""
    rng = np.random.default_rng(seed)
    n_genres = len(GENRES)
    genres = np.zeros((n_items, n_genres), np.float32)
    main = rng.integers(0, 6, n_items)  # six genres carry the catalog
    genres[np.arange(n_items), main] = 1
    item_vec = rng.normal(0, 0.5, (n_items, dim)).astype(np.float32)
    item_vec[:, :6] += np.eye(6, dtype=np.float32)[main]
    user_vec = rng.normal(0, 0.5, (n_users, dim)).astype(np.float32)
    user_vec[:, :6] += rng.dirichlet(np.ones(6) * 0.5, n_users).astype(np.float32) * 2
    bias = rng.normal(0, 0.2, n_items).astype(np.float32)
    taste = np.clip(3.0 + user_vec @ item_vec.T + bias + rng.normal(0, 0.2, (n_users, n_items)), 0.5, 5.0)
    items = ItemTable(np.arange(1, n_items + 1, dtype=np.int64), item_vec, bias, genres,
                      rng.uniform(80, 140, n_items).astype(np.float32), rng.integers(1, 300, n_items))
    sim_cfg = SimulatorConfig(**{"max_steps": 15, "session_budget_minutes": 360, **sim_overrides})
    config = ExperimentConfig(simulator=sim_cfg, dqn=DQNConfig(top_n=20, iterations=iterations, parallel_sessions=16,
                                                              warmup_transitions=min(200, iterations * 4), batch_size=64, hidden=64),
                              seeds=[0], ranker_dim=dim)
    scores = user_vec @ item_vec.T + bias
    order = np.argsort(-scores, axis=1, kind="stable")[:, : 20 + sim_cfg.max_steps]
    head = np.zeros(n_items, bool)
    head[np.argsort(-items.popularity)[: n_items // 5]] = True
    return World(config, items, UserSimulator(sim_cfg, items, np.arange(1, n_users + 1), taste), user_vec,
                 np.zeros((n_users, n_items), bool), order, np.take_along_axis(scores, order, 1).astype(np.float32), head, "tiny-ranker", "tiny-data")


def tiny_policy(world: World, version: str | None = None, *, train_users: int = 30, seed: int = 0) -> PolicyArtifact:
    """A DQN trained on ``world`` (its ``dqn.iterations`` budget) as a publishable artifact."""
    from movierec.rl.training import train_dqn

    learner, _ = train_dqn(world, np.arange(train_users), seed=seed, progress=False)
    return artifact_from_learner(learner, world.config, world.items, world.simulator.user_ids, world.user_vectors,
                                 {"trained_on": "tiny"}, version=version)
