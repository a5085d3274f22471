"""Top-N latency of the whole ranker path on the real catalog and a real served model.

``Ranker.top_n`` end to end (user lookup, filter mask, one matrix product, top-k, "because you
liked" neighbours and attention, the response model) for known users of ml-latest-small, half
of the requests with filters. Repeated over seeds (different users per seed); figures are the
mean and standard deviation over seeds. On a CUDA device the same requests also run on the CPU
and the share of identical top-N lists is reported (GPU kernels must not change what is served).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from movierec.contracts.movies import MovieFilters
from movierec.contracts.ranker import TopNRequest
from movierec.models.recommender import Recommender
from movierec.serving.catalog import MovieCatalog
from movierec.serving.ranker import Ranker

SERVED_FILTERS = (MovieFilters(), MovieFilters(genres_include=["Comedy", "Drama"], year_min=1990, min_avg_rating=3.0))
WARMUP = 10
"""Requests per seed left out of the figures (kernels and caches warm up)."""


@dataclass(frozen=True)
class ServedResult:
    model_version: str
    items: int
    device: str
    k: int
    requests: int
    seeds: list[int]
    p50_ms_mean: float
    p50_ms_std: float
    p95_ms_mean: float
    p95_ms_std: float
    same_lists_as_cpu: float | None = None
    """Share of requests whose top-N list equals the CPU's (None on the CPU)."""

    def as_dict(self) -> dict:
        return asdict(self)


def _lists_and_times(ranker: Ranker, users: np.ndarray, seeds: list[int], requests: int, k: int):
    per_seed, lists = [], {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        times = []
        for i in range(requests + WARMUP):
            request = TopNRequest(user_id=int(rng.choice(users)), k=k, filters=SERVED_FILTERS[i % 2])
            start = time.perf_counter()
            got = ranker.top_n(request)
            times.append((time.perf_counter() - start) * 1e3)
            lists[(seed, i)] = [s.movie_id for s in got.items]
        per_seed.append((float(np.percentile(times[WARMUP:], 50)), float(np.percentile(times[WARMUP:], 95))))
    return per_seed, lists


def measure_served(catalog: MovieCatalog, recommender: Recommender, device: str | torch.device = "cpu", *,
                   seeds: tuple[int, ...] = (0, 1, 2), requests: int = 100, k: int = 100) -> ServedResult:
    device = torch.device(device)
    users = np.array(sorted(u for u in catalog.user_ratings if u in set(recommender.artifact.user_ids.tolist())))
    if len(users) == 0:
        raise ValueError(f"model {recommender.artifact.version} knows none of the catalog's users")

    def ranker_on(d: torch.device) -> Ranker:
        r = Ranker(catalog=catalog, device=d, loader=lambda _folder: recommender)
        r.load(Path("."))
        return r

    per_seed, lists = _lists_and_times(ranker_on(device), users, list(seeds), requests, k)
    same = None
    if device.type != "cpu":
        _, cpu_lists = _lists_and_times(ranker_on(torch.device("cpu")), users, list(seeds), requests, k)
        same = sum(lists[key] == cpu_lists[key] for key in lists) / max(len(lists), 1)
    p50, p95 = [p[0] for p in per_seed], [p[1] for p in per_seed]
    spread = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
    return ServedResult(
        model_version=recommender.artifact.version, items=len(recommender.artifact.movie_ids), device=str(device), k=k,
        requests=requests, seeds=list(seeds), p50_ms_mean=round(statistics.mean(p50), 3), p50_ms_std=round(spread(p50), 3),
        p95_ms_mean=round(statistics.mean(p95), 3), p95_ms_std=round(spread(p95), 3),
        same_lists_as_cpu=None if same is None else round(same, 4),
    )
