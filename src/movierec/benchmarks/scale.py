"""``movierec bench scale``: the offline jobs on a synthetic dataset larger than ml-latest-small.

No ml-25m data is here (nothing can be downloaded), so the code paths written for its size are run
on a synthetic set in ml-25m's format instead: ``write_synthetic_movielens`` draws users whose
activity is log-normal, movies whose popularity is Zipf-like, and ratings from a low-rank taste
plus noise, rounded to half stars. Each job then runs as its own process, as a user would run it,
with ``MOVIEREC_HOME`` in a scratch folder and the dataset pointing at the synthetic one; its wall
time and peak resident memory (``wait4``'s ``ru_maxrss``) are recorded.

The jobs get no shared folder, so no text or poster encoder runs. The vendored MMTF-14K trailer
features are keyed by MovieLens id, and synthetic movies that share an id with a real one get that
movie's trailer features: meaningless as content, but they make the content stage run at this
size. What is exercised is the data handling of every offline part (the ratings, the sparse
training matrices, the item-item solve, the content stage, the RL world and its oracle), not the
encoders' speed (``movierec features bench`` measures that).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from movierec.rl.items import GENRES

JOBS = (
    ("model train", ("model", "train", "--set", "epochs=1", "--set", "content_epochs=1")),
    ("rl train", ("rl", "train", "--set", "dqn.iterations=200", "--no-publish")),
)
"""The jobs timed, in order (the RL world reads the fusion model the first one publishes in the
scratch home); one epoch each stage and a short DQN run, since what is measured is whether each
fits and how long its data handling takes, not the model's quality. The policy is saved, not
published: publishing drops the served lists in Redis, which is not the scratch home's."""


SCRATCH_MARKER = ".movierec-bench-scale"
"""Marks a scratch folder this benchmark made, and so may empty on its next run."""


@dataclass(frozen=True)
class SyntheticShape:
    users: int
    movies: int
    median_ratings: int
    """Median ratings per user before duplicates are dropped (MovieLens keeps users with 20 or more)."""
    seed: int = 0


def write_synthetic_movielens(folder: Path, shape: SyntheticShape) -> dict:
    """``movies.csv`` and ``ratings.csv`` in ml-25m's format under ``folder``; returns their sizes."""
    rng = np.random.default_rng(shape.seed)
    n_users, n_movies = shape.users, shape.movies
    # activity: log-normal around the median, at least 20 ratings (as MovieLens keeps), at most the catalog
    activity = np.clip(np.round(shape.median_ratings * rng.lognormal(0.0, 1.0, n_users)), 20, n_movies).astype(np.int64)
    popularity = 1.0 / np.arange(1, n_movies + 1) ** 0.9
    popularity = rng.permutation(popularity / popularity.sum())
    users = np.repeat(np.arange(1, n_users + 1), activity)
    movies = rng.choice(n_movies, size=len(users), p=popularity) + 1
    pairs = pd.DataFrame({"userId": users, "movieId": movies}).drop_duplicates(ignore_index=True)
    rank = 8
    taste_u = rng.normal(0, 0.45, (n_users + 1, rank)).astype(np.float32)
    taste_m = rng.normal(0, 0.45, (n_movies + 1, rank)).astype(np.float32)
    bias_u = rng.normal(0, 0.4, n_users + 1).astype(np.float32)
    bias_m = rng.normal(0, 0.5, n_movies + 1).astype(np.float32)
    u, m = pairs["userId"].to_numpy(), pairs["movieId"].to_numpy()
    score = 3.5 + bias_u[u] + bias_m[m] + np.einsum("ij,ij->i", taste_u[u], taste_m[m]) + rng.normal(0, 0.7, len(u))
    pairs["rating"] = np.clip(np.round(score * 2) / 2, 0.5, 5.0)
    pairs["timestamp"] = rng.integers(1_000_000_000, 1_600_000_000, len(u))
    folder.mkdir(parents=True, exist_ok=True)
    pairs.to_csv(folder / "ratings.csv", index=False)
    genres = ["|".join(sorted(rng.choice(GENRES, size=int(rng.integers(1, 4)), replace=False))) for _ in range(n_movies)]
    years = rng.integers(1930, 2020, n_movies)
    pd.DataFrame({"movieId": np.arange(1, n_movies + 1), "title": [f"Synthetic movie {i} ({y})" for i, y in zip(range(1, n_movies + 1), years)],
                  "genres": genres}).to_csv(folder / "movies.csv", index=False)
    return {"users": int(pairs["userId"].nunique()), "movies": int(pairs["movieId"].nunique()), "ratings": len(pairs)}


@dataclass(frozen=True)
class JobRun:
    job: str
    command: list[str]
    exit_code: int
    wall_s: float
    peak_rss_mib: float | None


_MEASURED = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"maxrss_kib": usage.ru_maxrss}, f)
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""
"""Runs the job from a fresh, small process and reports the job's peak RSS. Started straight from
the benchmark's process, a child's ``ru_maxrss`` would start at that (larger) process's resident
size: a forked copy's counters carry it over, and ``exec`` keeps the high-water mark."""


def run_job(job: str, command: list[str], env: dict[str, str], log: Path) -> JobRun:
    """Run ``command`` as a child process (output to ``log``) and measure it: wall time and the
    job's own peak resident memory (``wait4``'s ``ru_maxrss``, through ``_MEASURED``)."""
    usage_file = log.with_name(log.name + ".usage.json")
    usage_file.unlink(missing_ok=True)
    start = time.perf_counter()
    with open(log, "ab") as out:
        # its own process group, so that an interrupted benchmark stops the job too, not only the wrapper
        child = subprocess.Popen([sys.executable, "-c", _MEASURED, str(usage_file), *command], env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True, cwd=log.parent)  # no .env of the caller's
        try:
            exit_code = child.wait()
        except BaseException:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait()
            raise
    wall = time.perf_counter() - start
    peak_kib = json.loads(usage_file.read_text())["maxrss_kib"] if usage_file.exists() else None  # None: the wrapper died first
    return JobRun(job=job, command=command, exit_code=exit_code, wall_s=round(wall, 1),
                  peak_rss_mib=None if peak_kib is None else round(peak_kib / 1024.0, 1))  # ru_maxrss is in KiB on Linux


def scale_environment(data_dir: Path, home: Path) -> dict[str, str]:
    """The environment a job runs in: the synthetic data in ml-25m's format, a scratch home, and
    no shared folder (no encoders, posters or trailers for synthetic movies)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOVIEREC_")}
    env.update(MOVIEREC_HOME=str(home), MOVIEREC_DATASET_DIR=str(data_dir), MOVIEREC_DATASET_FORMAT="ml-25m")
    return env


def run_scale(shape: SyntheticShape, scratch: Path, say=print) -> dict:
    """Write the synthetic set under ``scratch``, then run every job of ``JOBS`` on it in turn,
    stopping at the first that fails; returns the record."""
    from movierec.benchmarks.serving import cpu_model

    data_dir, home, log = scratch / "data", scratch / "home", scratch / "jobs.log"
    say(f"writing a synthetic dataset: {shape.users:,} users, {shape.movies:,} movies, median {shape.median_ratings} ratings a user")
    t = time.perf_counter()
    sizes = write_synthetic_movielens(data_dir, shape)
    say(f"  {sizes['ratings']:,} ratings after duplicates ({time.perf_counter() - t:.0f} s)")
    env = scale_environment(data_dir, home)
    runs = []
    for job, args in JOBS:
        say(f"{job}: running (output in {log})")
        run = replace(run_job(job, [sys.executable, "-c", "from movierec.cli import main; main()", *args], env, log),
                      command=["movierec", *args])  # as a user types it, not this machine's interpreter path
        runs.append(run)
        say(f"  exit {run.exit_code}, {run.wall_s:.0f} s, peak RSS {'unknown' if run.peak_rss_mib is None else f'{run.peak_rss_mib:,.0f} MiB'}")
        if run.exit_code != 0:
            break
    return {"shape": asdict(shape), "dataset": sizes, "jobs": [asdict(r) for r in runs],
            "host": {"cpu": cpu_model(), "cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
