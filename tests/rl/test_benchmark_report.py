"""The benchmark runs every policy per seed, resumes saved seeds, and writes the report files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from movierec.rl.experiment import METRICS, POLICIES, interval95, run_benchmark
from movierec.rl.report import write_report


def test_interval_by_hand():
    mean, lo, hi = interval95([1.0, 2.0, 3.0])
    # sd 1, t(0.975, 2) = 4.3027
    assert mean == 2.0
    assert hi - mean == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    assert mean - lo == pytest.approx(hi - mean)


@pytest.mark.slow
def test_benchmark_and_report_on_a_tiny_world(world_factory, tmp_path):
    world = world_factory()
    from movierec.rl.config import apply_overrides

    world.config = apply_overrides(world.config, {"seeds": [0, 1], "dqn.iterations": 60, "dqn.warmup_transitions": 100})
    summary = run_benchmark(world, tmp_path / "bench", progress=False)
    assert set(summary["watch_time"]) == set(POLICIES)
    assert len(list((tmp_path / "bench").glob("*/seed-*.json"))) == 2
    again = run_benchmark(world, tmp_path / "bench", progress=False)  # resumes: same numbers without training
    assert again["watch_time"] == summary["watch_time"]
    paths = write_report(summary, tmp_path / "reports")
    data = json.loads((tmp_path / "reports" / "rl.json").read_text())
    for metric in ("watch_time", "ctr", "rating", "coverage", "long_tail_share"):
        assert set(data[metric]) == set(POLICIES)
        assert all(np.isfinite(v) for v in data[metric].values())
    md = (tmp_path / "reports" / "rl.md").read_text()
    assert "boredom_weight" in md and "| dqn |" in md and "| dqn_served |" in md
    assert "The DQN as served (epsilon 0.05, temperature 1.0) vs greedy" in md
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert set(METRICS) <= set(data["intervals"])
