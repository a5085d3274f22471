"""A tiny synthetic world for fast RL tests: 40 users, 120 movies, genre-structured taste."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.rl.config import DQNConfig, ExperimentConfig, SimulatorConfig
from movierec.rl.items import GENRES, ItemTable
from movierec.rl.simulator import UserSimulator
from movierec.rl.world import World


def make_tiny_world(seed: int = 0, n_users: int = 40, n_items: int = 120, dim: int = 8, **sim_overrides) -> World:
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
    config = ExperimentConfig(simulator=sim_cfg, dqn=DQNConfig(top_n=20, iterations=300, parallel_sessions=16, warmup_transitions=200,
                                                              batch_size=64, hidden=64), seeds=[0], ranker_dim=dim)
    scores = user_vec @ item_vec.T + bias
    order = np.argsort(-scores, axis=1, kind="stable")[:, : 20 + sim_cfg.max_steps]
    head = np.zeros(n_items, bool)
    head[np.argsort(-items.popularity)[: n_items // 5]] = True
    return World(config, items, UserSimulator(sim_cfg, items, np.arange(1, n_users + 1), taste), user_vec,
                 np.zeros((n_users, n_items), bool), order, np.take_along_axis(scores, order, 1).astype(np.float32), head, "tiny-ranker", "tiny-data")


@pytest.fixture(scope="session")
def tiny_world() -> World:
    return make_tiny_world()


@pytest.fixture(scope="session")
def world_factory():
    """``world_factory(seed=0, **simulator_overrides)``: a fresh tiny world."""
    return make_tiny_world


@pytest.fixture(scope="session")
def trained_tiny(tiny_world):
    """A DQN trained briefly on the tiny world's first 30 users: (learner, curve)."""
    from movierec.rl.training import train_dqn

    return train_dqn(tiny_world, np.arange(30), seed=0, progress=False)


@pytest.fixture(scope="session")
def tiny_artifact_factory(tiny_world, trained_tiny):
    """``tiny_artifact_factory(version=None)``: a PolicyArtifact of the briefly trained tiny DQN."""
    from movierec.rl.artifact import artifact_from_learner

    learner, _ = trained_tiny

    def make(version: str | None = None, learner_=None):
        return artifact_from_learner(learner_ or learner, tiny_world.config, tiny_world.items, tiny_world.simulator.user_ids,
                                     tiny_world.user_vectors, {"trained_on": "tiny"}, version=version)

    return make
