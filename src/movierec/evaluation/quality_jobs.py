"""The quality run's units computed by several worker processes.

A group is the units that must run in one process and in order: those that train on the same
split and seed and reuse one another's collaborative stage (ours and the ID-only model on a random
split; ours and the ablation rows on a cold-item split). Every other unit is a group of its own.
Groups are handed to the workers as tasks, longest first (by the typical time of their units on the
2-core development machine, ``TYPICAL_SECONDS``), so that a long one does not start last; short
groups are bundled into tasks of about ``BUNDLE_SECONDS``, since each task loads the dataset and
features again. Workers write results to the unit cache, as a single-process run does; the run
then collects them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:
    from movierec.evaluation.quality import QualityPlan
    from movierec.settings import Settings

TYPICAL_SECONDS = {"ours": 115, "mf": 60, "ablation": 25, "surprise_svdpp": 105, "cornac_ease": 87, "cornac_vbpr": 85,
                   "new": 90, "cornac_bpr": 19, "surprise_knnbaseline": 16}
"""Seconds a unit typically takes, by the first word of its label (``reports/quality.md``'s time
per unit, per seed); only the order and bundling of work depend on them. Unlisted units count 3 s."""
BUNDLE_SECONDS = 60
"""Groups expected to take less than this are bundled into tasks of about this length."""
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Set for the workers so that their BLAS and OpenMP pools share the CPUs instead of each taking
all of them (the peers' libraries read these when they load)."""


@contextlib.contextmanager
def _worker_threads(threads: int):
    """The thread variables set to ``threads`` while workers start, as they were afterwards."""
    saved = {v: os.environ.get(v) for v in THREAD_VARIABLES}
    os.environ.update({v: str(threads) for v in THREAD_VARIABLES})
    try:
        yield
    finally:
        for v, value in saved.items():
            if value is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = value


def tasks(units: list[tuple[str, str]]) -> list[tuple[frozenset[str], float]]:
    """The tasks for ``units`` ((label, group) pairs): sets of whole groups with their expected
    seconds, longest first."""
    cost: dict[str, float] = {}
    for label, group in units:
        cost[group] = cost.get(group, 0.0) + TYPICAL_SECONDS.get(label.split()[0], 3)
    out: list[tuple[frozenset[str], float]] = []
    bundle: list[str] = []
    for group in cost:  # in run order, so a bundle holds neighbours (one seed's small peers)
        if cost[group] >= BUNDLE_SECONDS:
            out.append((frozenset({group}), cost[group]))
            continue
        bundle.append(group)
        if sum(cost[g] for g in bundle) >= BUNDLE_SECONDS:
            out.append((frozenset(bundle), sum(cost[g] for g in bundle)))
            bundle = []
    if bundle:
        out.append((frozenset(bundle), sum(cost[g] for g in bundle)))
    return sorted(out, key=lambda t: -t[1])


def _compute(settings: "Settings", plan: "QualityPlan", fresh: bool, groups: frozenset[str]) -> tuple[frozenset[str], float]:
    """Worker: run the units of ``groups`` into the cache; returns them and the seconds taken."""
    from movierec.evaluation.quality import run_quality

    started = time.perf_counter()
    run_quality(settings, dataclasses.replace(plan, groups=groups), fresh=fresh, progress=False)
    return groups, time.perf_counter() - started


def compute_groups_in_parallel(settings: "Settings", plan: "QualityPlan", fresh: bool, units: list[tuple[str, str]], jobs: int,
                               progress: bool = True) -> None:
    """Compute every group of ``units`` with ``jobs`` worker processes (spawned: they share
    nothing with this one but the cache; each gets an equal share of the CPUs for its thread
    pools); a worker's error stops the run and is raised here."""
    work = tasks(units)
    bar = tqdm(total=len(work), desc=f"quality ({jobs} processes)", unit="task", disable=not progress)
    threads = max(1, len(os.sched_getaffinity(0)) // jobs)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        with _worker_threads(threads):  # the workers start on the first submissions
            pending = {pool.submit(_compute, settings, plan, fresh, groups) for groups, _ in work}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                if future.exception() is not None:
                    for other in pending:
                        other.cancel()
                    raise future.exception()
                groups, seconds = future.result()
                bar.update(1)
                bar.set_postfix_str(f"{', '.join(sorted(groups))[:60]} {seconds:.0f} s")
    bar.close()
