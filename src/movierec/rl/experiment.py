"""The RL benchmark: every policy on the same held-out simulated users, over several seeds.

Per seed: the simulated users are shuffled, ``eval_user_share`` of them are held out; the DQN is
trained (and the LinUCB bandit warmed up) on sessions of the others only; then every policy
serves ``eval_sessions_per_user`` sessions to each held-out user with the same simulator seeds.
The trained DQN is valued twice: ``dqn`` without exploration (its top-k by Q) and ``dqn_served``
with the serving exploration (``dqn.serving_epsilon`` and ``dqn.serving_temperature``), which is
how the policy service serves it.
Each seed's result is saved as soon as it is done, so an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from movierec.evaluation.metrics import t_interval95
from movierec.rl.config import ExperimentConfig
from movierec.rl.policies import (DQNPolicy, GreedyPolicy, LinUCBPolicy, PopularityPolicy, RandomCatalogPolicy,
                                  RandomRerankPolicy)
from movierec.rl.reward import step_reward
from movierec.rl.rollout import run_sessions
from movierec.rl.training import make_featurizer, train_dqn
from movierec.rl.world import World

POLICIES: tuple[str, ...] = ("dqn", "dqn_served", "greedy", "linucb", "random_rerank", "popularity", "random")
METRICS: tuple[str, ...] = ("watch_time", "ctr", "rating", "session_length", "coverage", "long_tail_share")


def config_key(config: ExperimentConfig, ranker_version: str, dataset_version: str) -> str:
    """Saved seeds are reused only for the same settings, data, ranker and list of policies."""
    blob = json.dumps([config.model_dump(exclude={"seeds"}), ranker_version, dataset_version, POLICIES], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def split_users(n_users: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, eval) user indices for one seed."""
    perm = np.random.default_rng([seed, 99]).permutation(n_users)
    n_eval = max(1, int(round(share * n_users)))
    return np.sort(perm[n_eval:]), np.sort(perm[:n_eval])


def run_seed(world: World, seed: int, *, progress: bool = True) -> dict:
    cfg = world.config
    k = cfg.simulator.slate_size
    featurizer = make_featurizer(world)
    train_users, eval_users = split_users(world.n_users, cfg.eval_user_share, seed)
    reward = lambda o: step_reward(cfg.reward, o.clicked, o.watch_minutes, o.rating)  # noqa: E731
    started = time.perf_counter()
    learner, curve = train_dqn(world, train_users, seed, progress=progress)
    train_seconds = time.perf_counter() - started
    linucb = LinUCBPolicy(featurizer, k, cfg.dqn.top_n, alpha=cfg.linucb_alpha)
    run_sessions(world, featurizer, linucb, train_users, sessions_per_user=1, seed=20_000 + seed,
                 parallel=cfg.dqn.parallel_sessions, reward_fn=reward)
    policies = {
        "dqn": DQNPolicy(learner, k), "dqn_served": DQNPolicy(learner, k, cfg.dqn.serving_exploration),
        "greedy": GreedyPolicy(k), "linucb": linucb,
        "random_rerank": RandomRerankPolicy(k), "popularity": PopularityPolicy(world, k), "random": RandomCatalogPolicy(world, k),
    }
    metrics = {}
    for name in POLICIES:
        m = run_sessions(world, featurizer, policies[name], eval_users, sessions_per_user=cfg.eval_sessions_per_user,
                         seed=30_000 + seed, parallel=cfg.dqn.parallel_sessions, reward_fn=reward)
        metrics[name] = m.as_dict()
    return {"seed": seed, "train_seconds": train_seconds, "eval_users": len(eval_users), "train_users": len(train_users),
            "metrics": metrics, "curve": {"iterations": curve.iterations, "watch_time": curve.watch_time, "loss": curve.loss}}


def interval95(values: list[float]) -> tuple[float, float, float]:
    """Mean and the Student-t 95% interval of the mean over seeds (a single value is its own interval)."""
    mean, _, half = t_interval95(values)
    return (mean, mean, mean) if len(values) < 2 else (mean, mean - half, mean + half)


def summarize(per_seed: list[dict]) -> dict:
    """Means over seeds shaped {metric: {policy: mean}}, plus intervals, per-seed values and goals."""
    out: dict = {m: {} for m in METRICS}
    intervals: dict = {m: {} for m in METRICS}
    for metric in METRICS:
        for policy in POLICIES:
            values = [r["metrics"][policy][metric] for r in per_seed]
            mean, lo, hi = interval95(values)
            out[metric][policy] = mean
            intervals[metric][policy] = {"mean": mean, "ci95": [lo, hi], "per_seed": values}
    wt = intervals["watch_time"]
    gain = wt["dqn"]["mean"] / wt["greedy"]["mean"] - 1.0
    served_gain = wt["dqn_served"]["mean"] / wt["greedy"]["mean"] - 1.0
    goals = {
        "dqn_vs_greedy_watch_time_gain": gain,
        "dqn_beats_greedy_by_10pct": bool(gain >= 0.10),
        "intervals_do_not_overlap": bool(wt["dqn"]["ci95"][0] > wt["greedy"]["ci95"][1]),
        "served_dqn_vs_greedy_watch_time_gain": served_gain,
        "served_dqn_beats_greedy_by_10pct": bool(served_gain >= 0.10),
        "served_intervals_do_not_overlap": bool(wt["dqn_served"]["ci95"][0] > wt["greedy"]["ci95"][1]),
        "dqn_vs_random": {m: out[m]["dqn"] / out[m]["random"] - 1.0 if out[m]["random"] else None for m in ("watch_time", "ctr", "rating")},
        "train_seconds_mean": float(np.mean([r["train_seconds"] for r in per_seed])),
    }
    out["intervals"] = intervals
    out["goals"] = goals
    return out


def run_benchmark(world: World, cache_dir: Path, *, progress: bool = True) -> dict:
    """Every seed of ``world.config`` (resuming saved seeds), summarised."""
    cfg = world.config
    key = config_key(cfg, world.ranker_version, world.dataset_version)
    folder = Path(cache_dir) / key
    folder.mkdir(parents=True, exist_ok=True)
    per_seed = []
    for seed in tqdm(cfg.seeds, desc="seeds", unit="seed", disable=not progress):
        path = folder / f"seed-{seed}.json"
        if path.exists():
            per_seed.append(json.loads(path.read_text()))
            continue
        result = run_seed(world, seed, progress=progress)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result))
        tmp.replace(path)
        per_seed.append(result)
    summary = summarize(per_seed)
    summary["per_seed"] = per_seed
    summary["run"] = {"config": cfg.model_dump(), "config_key": key, "ranker_version": world.ranker_version,
                      "dataset_version": world.dataset_version, "catalog_movies": len(world.items), "users": world.n_users}
    return summary
