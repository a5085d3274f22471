"""The DQN learns on a tiny simulated world and beats random by a clear margin (seeded, short run)."""

from __future__ import annotations

import numpy as np

from movierec.rl.policies import DQNPolicy, GreedyPolicy, LinUCBPolicy, PopularityPolicy, RandomCatalogPolicy, RandomRerankPolicy
from movierec.rl.reward import step_reward
from movierec.rl.rollout import run_sessions
from movierec.rl.training import make_featurizer


def _run(world, policy, users, seed=5):
    cfg = world.config
    return run_sessions(world, make_featurizer(world), policy, users, sessions_per_user=3, seed=seed, parallel=16,
                        reward_fn=lambda o: step_reward(cfg.reward, o.clicked, o.watch_minutes, o.rating))


def test_dqn_beats_random_on_held_out_users(tiny_world, trained_tiny):
    learner, curve = trained_tiny
    held_out = np.arange(30, 40)
    k = tiny_world.config.simulator.slate_size
    dqn = _run(tiny_world, DQNPolicy(learner, k), held_out)
    rnd = _run(tiny_world, RandomCatalogPolicy(tiny_world, k), held_out)
    assert dqn.watch_time > 1.3 * rnd.watch_time
    assert dqn.ctr > rnd.ctr
    assert dqn.rating > rnd.rating + 0.2
    assert len(curve.watch_time) >= 2 and np.all(np.isfinite(curve.loss[-1:]))


def test_every_baseline_serves_valid_slates(tiny_world):
    k = tiny_world.config.simulator.slate_size
    f = make_featurizer(tiny_world)
    policies = [GreedyPolicy(k), RandomRerankPolicy(k), RandomCatalogPolicy(tiny_world, k), PopularityPolicy(tiny_world, k),
                LinUCBPolicy(f, k, tiny_world.config.dqn.top_n)]
    for policy in policies:
        m = _run(tiny_world, policy, np.arange(5))
        assert m.sessions == 15
        assert 0 < m.ctr <= 1 and 0 < m.coverage <= 1 and 0 <= m.long_tail_share <= 1
    views = []
    from movierec.rl.rollout import _view
    from movierec.rl.state import Observation

    views = [_view(tiny_world, f, u, Observation(tiny_world.user_vectors[u]), set()) for u in range(4)]
    for policy in policies:
        for (slate, props), v in zip(policy.select(views, np.random.default_rng(0)), views):
            assert len(slate) == k and len(set(slate.tolist())) == k
            assert np.all((props > 0) & (props <= 1))


def test_double_dqn_update_reduces_the_loss_on_a_fixed_batch(tiny_world):
    from movierec.rl.dqn import ReplayBuffer
    from movierec.rl.training import make_learner

    f = make_featurizer(tiny_world)
    learner = make_learner(f, tiny_world.config, seed=0)
    buf = ReplayBuffer(64, f.state_dim, tiny_world.config.dqn.top_n, seed=0)
    rng = np.random.default_rng(0)
    rows = tiny_world.candidate_rows[0][:20]
    for i in range(64):
        s = rng.normal(size=f.state_dim).astype(np.float32)
        buf.add(s, int(rows[i % 20]), 0.5, i % 20, float(i % 3), True, s, rows, tiny_world.candidate_scores[0][:20])
    first = learner.update(buf, 64)
    for _ in range(150):
        last = learner.update(buf, 64)
    assert last < 0.5 * first


def test_dqn_as_served_explores_with_the_serving_rule(tiny_world, trained_tiny):
    """``dqn_served`` in the benchmark: the same network, slates drawn with the serving exploration."""
    from movierec.rl.rollout import _view
    from movierec.rl.state import Observation

    learner, _ = trained_tiny
    k = tiny_world.config.simulator.slate_size
    f = make_featurizer(tiny_world)
    views = [_view(tiny_world, f, u, Observation(tiny_world.user_vectors[u]), set()) for u in range(30, 40)]
    greedy = DQNPolicy(learner, k).select(views, np.random.default_rng(0))
    served = DQNPolicy(learner, k, tiny_world.config.dqn.serving_exploration).select(views, np.random.default_rng(0))
    assert all(np.all(props == 1.0) for _, props in greedy)
    assert all(np.all((props > 0) & (props < 1)) for _, props in served)
    assert any(not np.array_equal(a, b) for (a, _), (b, _) in zip(greedy, served))
    metrics = _run(tiny_world, DQNPolicy(learner, k, tiny_world.config.dqn.serving_exploration), np.arange(30, 40))
    assert metrics.sessions == 30 and 0 < metrics.ctr <= 1
