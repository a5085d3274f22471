"""What drawing one served slate costs: ``SlateExploration.select`` alone, per serving rule.

The policy service draws a slate per cache miss after scoring the candidates. The scores here are
synthetic (normal, with the spread of a trained DQN's Q-values for one request), because the draw's
cost depends on the candidate and slate counts, not on the network.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from movierec.evaluation.metrics import t_interval95
from movierec.rl.slate import SlateExploration

Q_SPREAD = 0.03
"""Standard deviation of one request's Q-values for a trained policy (a few hundredths)."""


@dataclass(frozen=True)
class DrawTiming:
    rule: str
    epsilon: float
    temperature: float
    candidates: int
    k: int
    draws: int
    seeds: tuple[int, ...]
    mean_us: float
    """Mean over seeds of the mean draw time."""
    mean_us_sd: float
    """Sample standard deviation over seeds (nan for one seed), likewise for the others."""
    p50_us: float
    p50_us_sd: float
    p99_us: float
    p99_us_sd: float

    def as_dict(self) -> dict:
        return asdict(self)


def time_draws(rule: SlateExploration, *, candidates: int, k: int, draws: int, seed: int) -> np.ndarray:
    """Seconds per ``rule.select`` over ``draws`` requests with fresh scores each (after 20 warm-ups)."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(scale=Q_SPREAD, size=(draws + 20, candidates))
    out = np.empty(draws)
    for i, row in enumerate(scores):
        started = time.perf_counter()
        rule.select(row, k, rng)
        if i >= 20:
            out[i - 20] = time.perf_counter() - started
    return out


def measure(rules: dict[str, SlateExploration], *, candidates: int, k: int, draws: int,
            seeds: tuple[int, ...]) -> list[DrawTiming]:
    """Per rule: draw times in microseconds, each statistic as mean and sd over ``seeds`` (sd nan
    for one seed)."""
    results = []
    for name, rule in rules.items():
        per_seed = [time_draws(rule, candidates=candidates, k=k, draws=draws, seed=s) * 1e6 for s in seeds]
        mean, mean_sd, _ = t_interval95([float(np.mean(t)) for t in per_seed])
        p50, p50_sd, _ = t_interval95([float(np.median(t)) for t in per_seed])
        p99, p99_sd, _ = t_interval95([float(np.percentile(t, 99)) for t in per_seed])
        results.append(DrawTiming(
            rule=name, epsilon=rule.epsilon, temperature=rule.temperature, candidates=candidates, k=k, draws=draws,
            seeds=tuple(seeds), mean_us=mean, mean_us_sd=mean_sd, p50_us=p50, p50_us_sd=p50_sd, p99_us=p99, p99_us_sd=p99_sd))
    return results
