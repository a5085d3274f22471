"""The closed loop: Locust's simulated people give feedback, the feedback service stores it, the
Celery worker retrains the policy from it and publishes new versions, the policy service loads
them, and the same people see the new lists. CTR and watch time are read per time bin from the
lists the known users were shown (without filters), next to the policy version that served them,
and the record lists every retraining check the worker made (``retraining_checks``).

A control run (``retrain=False``: no Celery worker, the published policy stays) with the same
users, seed and length tells a rise that comes from learning from one the simulated sessions
would show anyway. Run the control first: a learning run publishes new versions, and both should
start from the same one (each run records the version it started from).
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from movierec.benchmarks.locust_run import LocustSummary, run_locust
from movierec.benchmarks.serving import ServingBenchConfig, bench_stack_options, clear_earlier_runs, stack_services
from movierec.launcher.stack import LocalStack
from movierec.rl.artifact import current_version
from movierec.settings import Settings


@dataclass(frozen=True)
class OutcomeBin:
    start_s: float
    lists: int
    ctr: float
    watch_minutes_per_list: float
    mean_rating: float | None
    policy_versions: list[str]
    """Versions that served lists in this bin, most used first."""


def read_outcomes(path: Path) -> list[tuple[float, int, str, int, float, float | None]]:
    rows = []
    if not path.exists():
        return rows
    for r in csv.reader(path.open()):
        if len(r) != 6:
            continue
        rows.append((float(r[0]), int(r[1]), r[2], int(r[3]), float(r[4]), float(r[5]) if r[5] else None))
    return sorted(rows)


def bin_outcomes(rows, bin_s: float) -> list[OutcomeBin]:
    """CTR (lists with a click / lists), watch minutes per list and versions, per ``bin_s`` seconds."""
    if not rows:
        return []
    t0 = rows[0][0]
    bins: dict[int, list] = {}
    for row in rows:
        bins.setdefault(int((row[0] - t0) // bin_s), []).append(row)
    out = []
    for b in sorted(bins):
        part = bins[b]
        versions: dict[str, int] = {}
        for r in part:
            versions[r[2]] = versions.get(r[2], 0) + 1
        ratings = [r[5] for r in part if r[5] is not None]
        out.append(OutcomeBin(
            start_s=b * bin_s, lists=len(part), ctr=round(sum(r[3] for r in part) / len(part), 4),
            watch_minutes_per_list=round(sum(r[4] for r in part) / 60 / len(part), 2),
            mean_rating=round(sum(ratings) / len(ratings), 3) if ratings else None,
            policy_versions=sorted(versions, key=lambda v: -versions[v]),
        ))
    return out


def plot_closed_loop(runs: list[tuple[int, list[OutcomeBin], list[OutcomeBin] | None]], path: Path) -> None:
    """CTR and watch time per bin of each seed's learning run (solid, with its new policy versions
    dotted) and its control run without retraining (dashed, same colour)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_ctr, ax_watch) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for n, (seed, bins, control) in enumerate(runs):
        colour = f"C{n % 10}"
        if control:
            control_minutes = [b.start_s / 60 for b in control]
            for ax, values in ((ax_ctr, [b.ctr for b in control]), (ax_watch, [b.watch_minutes_per_list for b in control])):
                ax.plot(control_minutes, values, linestyle="--", marker=".", color=colour, alpha=0.6, label=f"seed {seed}: control, no retraining")
        minutes = [b.start_s / 60 for b in bins]
        for ax, values in ((ax_ctr, [b.ctr for b in bins]), (ax_watch, [b.watch_minutes_per_list for b in bins])):
            ax.plot(minutes, values, marker="o", color=colour, label=f"seed {seed}: retraining from feedback")
        previous = None
        for b, m in zip(bins, minutes):
            main = b.policy_versions[0] if b.policy_versions else None
            if main != previous and previous is not None:
                for ax in (ax_ctr, ax_watch):
                    ax.axvline(m, color=colour, linestyle=":", linewidth=1)
                if len(runs) == 1:
                    ax_ctr.annotate(str(main), (m, ax_ctr.get_ylim()[1]), fontsize=7, rotation=90, va="top")
            previous = main
    ax_ctr.set_ylabel("CTR (lists with a click)")
    ax_watch.set_ylabel("watch minutes per list")
    ax_watch.set_xlabel("minutes into the run")
    for ax in (ax_ctr, ax_watch):
        ax.grid(True, alpha=0.3)
    ax_watch.legend(loc="lower right", fontsize=7, ncol=2)
    fig.suptitle("Closed loop: simulated users' feedback -> Celery retraining -> new policy versions (dotted)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


RETRAINING_LINE = "policy retraining: {"
"""How the worker logs each retraining round's result (``movierec.tasks.policy.run_retraining``)."""
CHECK_FIELDS = ("status", "base_version", "version", "slates", "decisions", "current_slates", "candidate_snips", "current_snips",
                "gain_lower_bound", "current_propensity_gap", "units", "candidate_ess", "reason")


def retraining_checks(log_path: Path, offset: int = 0) -> list[dict]:
    """The retraining rounds the worker logged after byte ``offset`` of its log that valued a
    candidate (published or kept), in order, with the fields of ``CHECK_FIELDS``."""
    if not log_path.exists():
        return []
    with log_path.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    out = []
    for line in text.splitlines():
        at = line.find(RETRAINING_LINE)
        if at < 0:
            continue
        try:
            result = json.loads(line[at + len(RETRAINING_LINE) - 1:])
        except json.JSONDecodeError:
            continue
        if result.get("status") in ("published", "kept"):
            out.append({k: result.get(k) for k in CHECK_FIELDS})
    return out


def _drop_stream(redis_url: str, key: str) -> int:
    """Delete the run's decision log; how many decisions it held."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        length = int(client.xlen(key))
        client.delete(key)
        return length
    finally:
        client.close()


def run_closed_loop(settings: Settings, *, minutes: float, users: int, out_dir: Path, model_dir: Path | None,
                    database_url: str | None, redis_url: str | None, retrain_every_s: float, retrain_after_events: int,
                    bin_s: float, seed: int = 0, retrain: bool = True,
                    say: Callable[[str], None] = print) -> tuple[list[OutcomeBin], LocustSummary]:
    """``retrain=False``: the control run, without the Celery worker and beat."""
    cfg = ServingBenchConfig(database_url=database_url, redis_url=redis_url, model_dir=model_dir)
    options = bench_stack_options(settings, cfg, stack_services())
    options.celery = retrain
    start_version = current_version(settings.models_dir / "policy")
    # the run's own decision log, like its scratch database: decisions of an earlier run (whose
    # feedback is gone with its database) would read as lists nobody clicked
    decision_log_key = f"decisions:{out_dir.name}"
    options.extra_env.update({"MOVIEREC_RETRAIN_EVERY_S": f"{retrain_every_s:g}", "MOVIEREC_RETRAIN_AFTER_EVENTS": str(retrain_after_events),
                              "MOVIEREC_DECISION_LOG_KEY": decision_log_key})
    outcomes = out_dir / "outcomes.csv"
    worker_log = settings.home / "logs" / "worker.log"  # appended to by every run: read from here on
    log_offset = worker_log.stat().st_size if worker_log.exists() else 0
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes.unlink(missing_ok=True)
    if retrain:
        say(f"starting the stack with Celery worker and beat ({', '.join(options.services)}; retraining every {retrain_every_s:g} s "
            f"or {retrain_after_events} events), from policy {start_version}")
    else:
        say(f"starting the stack without retraining (control run; {', '.join(options.services)}), policy {start_version}")
    with LocalStack(settings, options, say=lambda m: say(f"  {m}")) as stack:
        cleared = clear_earlier_runs(stack.redis_url)
        say(f"  removed what earlier runs left in Redis: {cleared['cached_lists']} cached lists, {cleared['queued_tasks']} queued tasks")
        say(f"locust: {users} users for {minutes:g} minutes")
        summary = run_locust(stack.url("gateway"), out_dir, users=users, run_time_s=int(minutes * 60), seed=seed,
                             env={"MOVIEREC_LOADTEST_OUTCOMES": str(outcomes)})
        logged = _drop_stream(stack.redis_url, decision_log_key)
    bins = bin_outcomes(read_outcomes(outcomes), bin_s)
    (out_dir / "closed_loop.json").write_text(json.dumps({"minutes": minutes, "users": users, "seed": seed, "bin_s": bin_s,
                                                          "retrain": retrain, "start_version": start_version, "logged_decisions": logged,
                                                          "cleared_from_earlier_runs": cleared,
                                                          "requests": summary.total.requests, "failures": summary.total.failures,
                                                          "bins": [asdict(b) for b in bins],
                                                          "checks": retraining_checks(worker_log, log_offset)}, indent=2))
    return bins, summary
