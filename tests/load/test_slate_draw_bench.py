"""``movierec bench slate-draw`` times the real slate rule and prints well-formed figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from movierec.benchmarks.slate_draw import measure
from movierec.rl.slate import SlateExploration

MOVIEREC = str(Path(sys.executable).parent / "movierec")


def test_measure_gives_ordered_positive_figures_per_rule():
    rules = {"greedy": SlateExploration(0.05), "softmax": SlateExploration(0.05, 1.0)}
    results = measure(rules, candidates=30, k=10, draws=40, seeds=(0, 1))
    assert [r.rule for r in results] == ["greedy", "softmax"]
    assert [r.temperature for r in results] == [0.0, 1.0]
    for r in results:
        assert 0 < r.p50_us <= r.p99_us and r.mean_us > 0
        assert r.mean_us_sd >= 0 and r.seeds == (0, 1) and r.draws == 40


def test_cli_prints_both_rules_and_refuses_bad_seeds():
    ok = subprocess.run([MOVIEREC, "bench", "slate-draw", "--draws", "20", "--seeds", "0"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "epsilon-greedy" in ok.stdout and "softmax (serving)" in ok.stdout
    bad = subprocess.run([MOVIEREC, "bench", "slate-draw", "--seeds", "a,b"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--seeds" in bad.stderr
