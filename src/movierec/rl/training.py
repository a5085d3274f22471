"""Train the DQN re-ranker on simulated sessions of the training users."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from movierec.rl.config import ExperimentConfig
from movierec.rl.dqn import DQNLearner, ReplayBuffer
from movierec.rl.policies import DQNPolicy
from movierec.rl.reward import step_reward
from movierec.rl.rollout import Transition, run_sessions
from movierec.rl.slate import SlateExploration
from movierec.rl.state import Featurizer
from movierec.rl.world import World


@dataclass
class TrainingCurve:
    """Average watch time of training sessions (with exploration), by iteration where they ended."""

    iterations: list[int] = field(default_factory=list)
    watch_time: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)


def make_featurizer(world: World) -> Featurizer:
    return Featurizer(world.items, world.config.dqn.history, world.config.simulator.max_steps)


def make_learner(featurizer: Featurizer, config: ExperimentConfig, seed: int) -> DQNLearner:
    d = config.dqn
    return DQNLearner(featurizer, top_n=d.top_n, hidden=d.hidden, gamma=d.gamma, lr=d.lr, tau=d.target_tau, seed=seed)


def train_dqn(world: World, train_users: np.ndarray, seed: int, *, progress: bool = True,
              learner: DQNLearner | None = None) -> tuple[DQNLearner, TrainingCurve]:
    """Collect sessions with a decaying epsilon-greedy DQN, learning after every lock-step."""
    cfg = world.config
    d = cfg.dqn
    featurizer = make_featurizer(world)
    learner = learner or make_learner(featurizer, cfg, seed)
    buffer = ReplayBuffer(d.replay_capacity, featurizer.state_dim, d.top_n, seed=seed)
    policy = DQNPolicy(learner, cfg.simulator.slate_size, SlateExploration(d.epsilon_start))
    curve = TrainingCurve()
    recent: list[float] = []
    losses: list[float] = []
    state = {"iteration": 0}
    bar = tqdm(total=d.iterations, desc=f"dqn seed {seed}", unit="step", disable=not progress, leave=False)

    def on_transition(t: Transition) -> None:
        for row, rank, score in zip(t.rows, t.ranks, t.scores):
            buffer.add(t.state, row, score, rank, t.reward, t.done, t.next_state, t.next_rows, t.next_scores)

    def on_iteration(it: int) -> None:
        state["iteration"] = it
        decay_steps = max(1, int(d.epsilon_decay_share * d.iterations))
        policy.exploration = SlateExploration(max(d.epsilon_end, d.epsilon_start - (d.epsilon_start - d.epsilon_end) * it / decay_steps))
        if len(buffer) >= max(d.warmup_transitions, d.batch_size):
            for _ in range(d.updates_per_iteration):
                losses.append(learner.update(buffer, d.batch_size))
        if it % 50 == 0 and recent:
            curve.iterations.append(it)
            curve.watch_time.append(float(np.mean(recent)))
            curve.loss.append(float(np.mean(losses[-50:])) if losses else float("nan"))
            recent.clear()
        bar.update(1)

    torch.set_num_threads(1)
    # enough sessions that the iteration budget, not the queue, ends training
    sessions = int(np.ceil(d.iterations * d.parallel_sessions / max(1, len(train_users)) / 3)) + 1
    run_sessions(
        world, featurizer, policy, train_users, sessions_per_user=sessions, seed=10_000 + seed,
        parallel=d.parallel_sessions, reward_fn=lambda o: step_reward(cfg.reward, o.clicked, o.watch_minutes, o.rating),
        on_transition=on_transition, on_iteration=on_iteration, on_session_end=lambda s: recent.append(s.watch_minutes),
        max_iterations=d.iterations,
    )
    bar.close()
    return learner, curve
