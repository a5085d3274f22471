"""The serving benchmark's parts: wrk against the real bare endpoint, profile bucketing, Locust CSV
reading, closed-loop binning and the goal verdicts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from movierec.benchmarks.closed_loop import OutcomeBin, bin_outcomes, plot_closed_loop, read_outcomes, retraining_checks
from movierec.benchmarks.locust_run import read_stats
from movierec.benchmarks.profiling import IDLE, bucket_of, summarise
from movierec.benchmarks.ranker_scaling import ScalingResult
from movierec.benchmarks.report import closed_loop_section, goals, headline, render_markdown
from movierec.benchmarks.serving import ServingBenchResult, start_bare, _stop
from movierec.benchmarks.wrk_runner import WrkError, WrkResult, fixed_bodies_script, run_wrk, unique_miss_script, wrk_binary
from movierec.launcher.servers import free_port

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _require_wrk() -> None:
    if wrk_binary() is None:
        message = "wrk is not installed (Debian: apt-get install wrk; make test installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.slow
def test_wrk_loads_the_bare_endpoint_with_both_scripts(tmp_path: Path):
    _require_wrk()
    port = free_port()
    proc = start_bare(1, port, tmp_path / "bare.log")
    try:
        url = f"http://127.0.0.1:{port}/v1/recommendations"
        fixed = run_wrk(url, fixed_bodies_script([{"user_id": 1, "k": 20}, {"user_id": 2, "k": 20}]), target="bare", connections=4, duration_s=2)
        # the bare endpoint accepts the miss script's bodies too (extra fields allowed), so both must be error-free
        unique = run_wrk(url, unique_miss_script([1, 2, 3], 20, 900_000_000), target="bare", connections=4, duration_s=2)
    finally:
        _stop(proc)
    for run in (fixed, unique):
        assert run.requests > 10 and run.errors == 0
        assert 0 < run.p50_ms <= run.p95_ms <= run.p99_ms <= run.max_ms
        assert run.rps > 0 and 0 <= run.wrk_cpu_share < 1


def test_wrk_refuses_anything_but_loopback():
    _require_wrk()
    with pytest.raises(WrkError, match="loopback"):
        run_wrk("http://example.com/", "", target="x", connections=1, duration_s=1)


def test_profile_buckets_take_the_innermost_recognised_frame(tmp_path: Path):
    assert bucket_of("main (a.py:1);handle (uvicorn/protocols/h11_impl.py:2);dumps (json/__init__.py:3)").startswith("JSON")
    assert bucket_of("main (a.py:1);top_n (movierec/serving/item_index.py:9);addmv (torch/functional.py:4)").startswith("model")
    assert bucket_of("main (a.py:1);nearest (movierec/serving/item_index.py:9)".replace("nearest", "ItemIndex.nearest")).startswith("filters")
    assert bucket_of("run (threading.py:1);wait (threading.py:320)") == IDLE
    raw = tmp_path / "raw.txt"
    raw.write_text("a (x.py:1);dumps (json/__init__.py:3) 30\na (x.py:1);f (movierec/storage/feedback.py:2);execute (psycopg/cursor.py:1) 10\n"
                   "select (selectors.py:468) 60\n")
    profile = summarise("svc", raw)
    assert profile.samples == 100 and profile.idle_share == 0.6
    assert profile.busy_shares == {"JSON and validation (pydantic, json)": 0.75, "database (SQLAlchemy, psycopg)": 0.25}
    assert profile.hot_spots["f (movierec/storage/feedback.py)"] == 0.25


def test_locust_stats_are_read_from_its_csv(tmp_path: Path):
    header = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,"\
             "Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
    stats = tmp_path / "s.csv"
    stats.write_text(header + "\nPOST,/v1/recommendations,40,1,90,95,10,300,2000,4.5,0.1,90,100,110,120,150,200,250,280,300,300,300\n"
                     ",Aggregated,60,1,80,85,5,300,1500,6.5,0.1,80,90,100,110,140,190,240,270,300,300,300\n")
    total, endpoints = read_stats(stats)
    assert (total.requests, total.failures, total.p95_ms) == (60, 1, 190.0)
    assert [e.name for e in endpoints] == ["/v1/recommendations"] and endpoints[0].rps == 4.5


def test_closed_loop_bins_ctr_watch_time_and_versions(tmp_path: Path):
    log = tmp_path / "outcomes.csv"
    log.write_text("100.0,1,v1,1,600.0,4.0\n110.0,2,v1,0,0.0,\n130.0,3,v2,1,1200.0,5.0\n135.0,1,v2,1,0.0,3.0\nbroken line\n")
    bins = bin_outcomes(read_outcomes(log), 30)
    assert [b.lists for b in bins] == [2, 2]
    assert bins[0].ctr == 0.5 and bins[0].watch_minutes_per_list == 5.0 and bins[0].mean_rating == 4.0
    assert bins[1].ctr == 1.0 and bins[1].policy_versions == ["v2"] and bins[1].start_s == 30


def _loop(ctrs: list[float], lists: int = 100, start: str = "v0", seed: int = 0) -> dict:
    bins = [{"start_s": 60.0 * i, "lists": lists, "ctr": c, "watch_minutes_per_list": 10.0, "mean_rating": 4.0,
             "policy_versions": [start if i == 0 else f"v{i}"]} for i, c in enumerate(ctrs)]
    return {"minutes": len(ctrs), "users": 5, "seed": seed, "requests": 10, "failures": 0, "start_version": start, "bins": bins}


def test_closed_loop_section_tells_learning_from_the_control(tmp_path: Path):
    learning, control = _loop([0.5, 0.5, 0.7, 0.7]), _loop([0.5, 0.5, 0.55, 0.55])
    text = "\n".join(closed_loop_section([(learning, control)], tmp_path / "none.png"))
    # halves of 200 lists each: 0.5 -> 0.7, half-width 1.96 * sqrt(.25/200 + .21/200) = 0.094
    assert "CTR rose: 0.500 in the first half, 0.700 in the second (+0.200 +- 0.094, 95%)" in text
    assert "CTR 0.500 then 0.550 (+0.050 +- 0.098)" in text and "started from policy v0)" in text
    assert "over the control: +0.150 +- 0.136" in text
    assert "One seed so far: learning adds +0.150 +- 0.136" in text
    flat = "\n".join(closed_loop_section([(_loop([0.5, 0.52, 0.5, 0.52]), None)], tmp_path / "none.png"))
    assert "did not change beyond chance" in flat and "No control run" in flat and "One seed so far" not in flat


def test_closed_loop_section_pools_the_seeds_with_a_t_interval(tmp_path: Path):
    # differences of the rises over three seeds: +0.15, +0.05, +0.10 -> mean 0.10, sd 0.05,
    # t(0.975, 2) = 4.303 -> half-width 4.303 * 0.05 / sqrt(3) = 0.124
    pairs = [(_loop([0.5, 0.5, 0.7, 0.7], seed=0), _loop([0.5, 0.5, 0.55, 0.55], seed=0)),
             (_loop([0.5, 0.5, 0.6, 0.6], seed=1), _loop([0.5, 0.5, 0.55, 0.55], seed=1)),
             (_loop([0.5, 0.5, 0.6, 0.6], seed=2), _loop([0.5, 0.5, 0.5, 0.5], start="w0", seed=2))]
    text = "\n".join(closed_loop_section(pairs, tmp_path / "none.png"))
    assert "| 1 | v0 | 3 | 0.500 -> 0.600 (+0.100) | 0.500 -> 0.550 (+0.050) | +0.050 +- " in text
    assert "| 2 | v0 (control: w0) | 3 |" in text
    assert "Over 3 seeds, learning adds +0.100 to the rise of CTR (sd 0.050 over seeds; 95% t interval +- 0.124, " \
           "not distinguishable from zero)" in text
    assert text.index("### Seed 0") < text.index("### Seed 1") < text.index("### Seed 2")
    assert "By starting policy" not in text  # every learning run started from v0: one series


def test_closed_loop_section_gives_each_starting_policy_its_own_series(tmp_path: Path):
    # v0: +0.15 and +0.05 -> mean 0.10, sd 0.0707, t(0.975, 1) = 12.706 -> +- 0.635; u0: +0.20 alone
    pairs = [(_loop([0.5, 0.5, 0.7, 0.7], seed=0), _loop([0.5, 0.5, 0.55, 0.55], seed=0)),
             (_loop([0.5, 0.5, 0.6, 0.6], seed=1), _loop([0.5, 0.5, 0.55, 0.55], seed=1)),
             (_loop([0.5, 0.5, 0.7, 0.7], start="u0", seed=2), _loop([0.5, 0.5, 0.5, 0.5], start="u0", seed=2))]
    text = "\n".join(closed_loop_section(pairs, tmp_path / "none.png"))
    assert "Over 3 seeds, learning adds +0.133" in text
    assert "| v0 | 2 | +0.100 | 0.071 | +- 0.635 |" in text and "| u0 | 1 | +0.200 | – | – |" in text


def test_closed_loop_records_pair_each_learning_run_with_its_seeds_control(tmp_path: Path):
    from movierec.benchmarks.records import closed_loop_pairs, closed_loop_record_path, save_record

    save_record(closed_loop_record_path(tmp_path, True, 2), _loop([0.5] * 4, seed=2))
    save_record(closed_loop_record_path(tmp_path, True, 0), _loop([0.6] * 4, seed=0))
    save_record(closed_loop_record_path(tmp_path, False, 0), _loop([0.4] * 4, seed=0))
    save_record(closed_loop_record_path(tmp_path, False, 5), _loop([0.4] * 4, seed=5))  # a control alone is not a pair
    pairs = closed_loop_pairs(tmp_path)
    assert [(d["seed"], None if c is None else c["seed"]) for d, c in pairs] == [(0, 0), (2, None)]
    assert pairs[0][1]["bins"][0]["ctr"] == 0.4 and closed_loop_pairs(tmp_path / "none") == []
    figure = tmp_path / "loop.png"
    plot_closed_loop([(d["seed"], [OutcomeBin(**b) for b in d["bins"]], c and [OutcomeBin(**b) for b in c["bins"]]) for d, c in pairs], figure)
    assert figure.stat().st_size > 10_000


def test_the_closed_loop_keeps_the_workers_checks_of_its_own_run(tmp_path: Path):
    log = tmp_path / "worker.log"
    earlier = '[2026-11-23 10:00:00,000: INFO/MainProcess] policy retraining: {"status": "kept", "slates": 1}\n'
    log.write_text(earlier)
    kept = {"status": "kept", "base_version": "v0", "version": "v1", "slates": 900, "decisions": 900, "current_slates": 0, "candidate_snips": 0.52,
            "current_snips": 0.5, "gain_lower_bound": -0.03, "current_propensity_gap": 0.0, "units": 2700, "candidate_ess": 41.25,
            "reason": "not above", "events": 300}
    published = {**kept, "status": "published", "slates": 1400, "gain_lower_bound": 0.01}
    skipped = {"status": "skipped", "reason": "12 usable served slates, fewer than the 20 needed"}
    with log.open("a") as f:
        for r in (skipped, kept, published):
            f.write(f"[2026-11-23 11:00:00,000: INFO/MainProcess] policy retraining: {json.dumps(r)}\n")
        f.write("[2026-11-23 11:00:01,000: INFO/MainProcess] policy retraining: published (a plain sentence)\n")
    checks = retraining_checks(log, len(earlier))
    assert [c["status"] for c in checks] == ["kept", "published"] and "events" not in checks[0]
    assert checks[1]["gain_lower_bound"] == 0.01 and retraining_checks(tmp_path / "missing.log") == []
    text = "\n".join(closed_loop_section([({**_loop([0.5] * 4), "checks": checks}, None)], tmp_path / "none.png"))
    assert "| 1 | kept | 900 (900) | 0 | 0.5200 | 0.5000 | -0.0300 | 0.000 | 41.2 / 2700 |" in text
    assert "| 2 | published | 1400 (900) | 0 |" in text
    older = [{k: v for k, v in c.items() if k not in ("current_slates", "units", "candidate_ess")} for c in checks]  # a record made before they were kept
    assert "| 1 | kept | 900 (900) | - | 0.5200 | 0.5000 | -0.0300 | 0.000 | - / - |" in "\n".join(closed_loop_section([({**_loop([0.5] * 4), "checks": older}, None)], tmp_path / "none.png"))
    assert "valued no candidate" in "\n".join(closed_loop_section([({**_loop([0.5] * 4), "checks": []}, None)], tmp_path / "none.png"))


def _run(target: str, c: int, rps: float, p99: float) -> WrkResult:
    return WrkResult(target, c, 2, 15.0, int(rps * 15), rps, p99 / 3, p99 / 2, p99, p99, p99 / 3, 0, 0, 1.0, 0.02)


def test_headline_ratios_and_goal_verdicts():
    result = ServingBenchResult(config={"headline_connections": 32})
    result.runs = [_run("bare-1w", 32, 1000.0, 40.0), _run("gateway-hit", 32, 700.0, 45.0), _run("gateway-miss", 32, 200.0, 150.0)]
    h = headline(result, [])
    assert (h["bare_rps"], h["hit_ratio"], h["miss_ratio"], h["hit_p99_ms_32"]) == (1000.0, 0.7, 0.2, 45.0)
    verdicts = {g.name: g.passed for g in goals(h)}
    assert verdicts["cache hit: throughput"] is True and verdicts["cache hit: p99 at 32 connections"] is True
    assert verdicts["cache miss: throughput"] is False and verdicts["cache miss: p99 at 32 connections"] is False
    assert verdicts["ranker: top-20 over 10^6 items, CPU"] is None  # not measured


def test_report_renders_the_gpu_table_and_the_served_model_check(tmp_path: Path):
    result = ServingBenchResult(config={"headline_connections": 32, "wrk_threads": 2, "duration_s": 15.0, "warmup_s": 3.0,
                                        "levels": [32], "k": 20, "hit_users": 50})
    result.runs = [_run("bare-1w", 32, 1000.0, 40.0), _run("gateway-hit", 32, 700.0, 45.0), _run("gateway-miss", 32, 200.0, 150.0)]
    cpu = [ScalingResult(1_000_000, 128, "cpu", 20, 5, 30.0, 30.0, 33.0, 35.0, 33.0, 1.0)]
    gpu = [ScalingResult(1_000_000, 128, "cuda", 20, 5, 0.5, 0.5, 1.0, 1.2, 1.0, 0.5)]
    served = {"model_version": "m1", "items": 9742, "k": 100, "requests": 100, "seeds": [0, 1, 2], "p50_ms_mean": 1.95,
              "p50_ms_std": 0.3, "p95_ms_mean": 3.05, "p95_ms_std": 0.14, "same_lists_as_cpu": 1.0}
    md = render_markdown(result, headline(result, cpu, gpu), cpu, gpu, tmp_path / "figures" / "latency.png", "movierec bench serving", 1, served)
    assert "128-dimensional vectors" in md and "On the GPU (cuda" in md
    assert "p50 1.95 +- 0.30 ms" in md and "the same lists as on the CPU for 100% of requests" in md
    assert "No GPU record" in render_markdown(result, headline(result, cpu), cpu, None, tmp_path / "figures" / "l.png", "c", 1)


@pytest.mark.integration
def test_a_benchmark_run_starts_without_what_earlier_runs_left_in_redis():
    """Cached lists (and their stale copies) and queued Celery tasks of an earlier run are
    removed in real Redis; other keys stay."""
    import redis

    from movierec.benchmarks.serving import clear_earlier_runs
    from movierec.tasks.app import make_celery

    url = f"{os.environ.get('MOVIEREC_TEST_REDIS_URL', 'redis://127.0.0.1:6379')}/9"  # a DB no other test uses
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        for key in ("recs:1:abc", "recs:1:history", "recs:22:def", "recs_stale:1:abc", "movies:added"):
            client.set(key, "x")
        app = make_celery(url)
        for user in (1, 2, 3):  # a control run's invalidations, queued with no worker
            app.send_task("movierec.tasks.cache.invalidate_user_recs", args=[user, False])
        assert clear_earlier_runs(url) == {"cached_lists": 4, "queued_tasks": 3}
        assert client.exists("movies:added") and not client.keys("recs*") and client.llen("celery") == 0
        assert clear_earlier_runs(url) == {"cached_lists": 0, "queued_tasks": 0}
    finally:
        client.flushdb()


def test_fine_tune_study_section_sets_the_check_beside_the_true_gain(tmp_path: Path):
    from movierec.benchmarks.records import fine_tune_study_record_path, fine_tune_study_records, save_record
    from movierec.benchmarks.report import fine_tune_study_section

    view = lambda cap, gain, ess, bound: {"cap": cap, "gain": gain, "candidate_ess": ess, "gain_lower_bound": bound}  # noqa: E731
    for seed, temperature in ((1, 0.0), (0, 0.0), (0, 0.1)):
        record = {"seed": seed, "rows": [
            {"label": "3 epochs", "units": 4000, "ctr_gain": 0.062, "ctr_gain_half_width": 0.018, "served": {"ctr": 0.612},
             "views": [view(None, 0.01, 8.0, -0.124), view(10.0, 0.163, 580.7, 0.116)]}]}
        if temperature:  # records written before the softmax exploration have neither key
            record.update(serving_epsilon=0.05, serving_temperature=temperature)
            record["rows"][0]["views"][0] = view(None, 0.05, 900.0, 0.02)
            record["rows"].append({"label": "untrained", "units": 4000, "ctr_gain": -0.04, "ctr_gain_half_width": 0.02,
                                   "served": {"ctr": 0.612}, "views": [view(None, -0.03, 800.0, -0.05)]})
        save_record(fine_tune_study_record_path(tmp_path, seed, temperature), record)
    records = fine_tune_study_records(tmp_path)
    assert [(r["seed"], r.get("serving_temperature", 0.0)) for r in records] == [(0, 0.0), (1, 0.0), (0, 0.1)]
    assert fine_tune_study_record_path(tmp_path, 0, 0.1).name == "fine_tune_study_seed0_t0.1.json"
    text = "\n".join(fine_tune_study_section(records))
    assert ("| eps 0.05 | 0 | 0.612 | 3 epochs | +0.062 +- 0.018 | as logged (the check) | +0.010 | 8.0 of 4000 | -0.124 | no |"
            in text)
    assert "| eps 0.05, T 0.1 | 0 | 0.612 | 3 epochs | +0.062 +- 0.018 | as logged (the check) | +0.050 | 900.0 of 4000 | +0.020 | yes |" in text
    assert "| | | | | | capped at 10 | +0.163 | 580.7 of 4000 | +0.116 | yes |" in text
    # one summary row per serving exploration: the check's bound (-0.124) publishes none here
    assert "| eps 0.05 | 0, 1 | 0.612 | 0 of 2 | – | 8-8 | 0 of 0 |" in text
    assert "| eps 0.05, T 0.1 | 0 | 0.612 | 1 of 1 | +0.062 to +0.062 | 900-900 | 1 of 1 |" in text
    assert fine_tune_study_section([]) == []


def test_report_names_the_cpu_and_what_was_cleared_before_measuring(tmp_path: Path):
    from movierec.benchmarks.serving import cpu_model

    result = ServingBenchResult(config={"headline_connections": 32, "wrk_threads": 2, "duration_s": 15.0, "warmup_s": 3.0,
                                        "levels": [32], "k": 20, "hit_users": 50})
    result.runs = [_run("bare-1w", 32, 1000.0, 40.0), _run("gateway-hit", 32, 700.0, 45.0), _run("gateway-miss", 32, 200.0, 150.0)]
    result.machine = {"cpus": 2, "cpu_model": cpu_model(), "load_avg_at_start": [0.1, 0.1, 0.1]}
    result.cleared_from_earlier_runs = {"cached_lists": 46_000, "queued_tasks": 12}
    cpu = [ScalingResult(1_000_000, 128, "cpu", 20, 5, 30.0, 30.0, 33.0, 35.0, 33.0, 1.0)]
    md = render_markdown(result, headline(result, cpu), cpu, None, tmp_path / "figures" / "l.png", "c", 1)
    assert f"({cpu_model()}, 2 CPU cores" in md and ", torch " in cpu_model()
    assert "46000 cached lists and 12 queued tasks left by earlier runs were removed" in md
