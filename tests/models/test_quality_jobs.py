"""The quality run's units computed by worker processes: tasks keep each group whole and start
with the longest, and a parallel run gives the single-process run's results."""

from __future__ import annotations

from movierec.evaluation.quality import QualityPlan, run_quality
from movierec.evaluation.quality_jobs import BUNDLE_SECONDS, tasks


def test_tasks_keep_groups_whole_bundle_short_ones_and_start_with_the_longest():
    units = [("ours random seed 0", "random-0"), ("mf random seed 0", "random-0"), ("ours cold seed 0", "cold-0"),
             ("ablation text seed 0", "cold-0"), ("global_mean seed 0", "global_mean-0"), ("popularity seed 0", "popularity-0"),
             ("surprise_svdpp seed 0", "surprise_svdpp-0"), ("implicit_als seed 0", "implicit_als-0")]
    got = tasks(units)
    assert [t for t, _ in got] == [frozenset({"random-0"}), frozenset({"cold-0"}), frozenset({"surprise_svdpp-0"}),
                                   frozenset({"global_mean-0", "popularity-0", "implicit_als-0"})]
    assert [s for _, s in got] == [175, 140, 105, 9]
    assert all(s >= BUNDLE_SECONDS for _, s in got[:-1])
    assert sorted(g for t, _ in got for g in t) == sorted({g for _, g in units})


def test_a_parallel_run_gives_the_single_process_results(bare_settings):
    plan = QualityPlan(seeds=[0, 1], peers=False, ours=False)  # the random-order cold units: quick
    parallel = run_quality(bare_settings, plan, progress=False, jobs=2)
    assert parallel["meta"]["jobs"] == 2 and parallel["skipped"] == []
    cached = sorted(p.name for p in (bare_settings.home / "quality").rglob("*.json"))
    assert cached == ["random-cold-0.json", "random-cold-1.json"]
    single = run_quality(bare_settings, plan, fresh=True, progress=False)
    assert parallel["cold"]["random"] == single["cold"]["random"]
    assert len(set(parallel["cold"]["random"]["cold_recall@20"])) == 2  # one unit per seed, each its own
