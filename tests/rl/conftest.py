"""A tiny synthetic world for fast RL tests: 40 users, 120 movies, genre-structured taste."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.rl.tiny import make_tiny_world
from movierec.rl.world import World


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
