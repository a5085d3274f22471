"""Top-20 cost of the real ranker code (``movierec.serving``) over synthetic catalogs.

Each catalog has ``n`` items with random fused vectors and biases (the model's dimension), shaped
like the served model's: clustered (a centre per hundred items, each item off its centre by 0.3
of the centres' spread) with log-normal norms (sigma 0.3; the served vectors' norms run from
about 0.6 to twice their median), and random years, mean ratings and genres, so the filter mask
runs over real column arrays. On the CPU a catalog of 10^5 items or more is scanned in int8 first
(``movierec.serving.int8_scan``); each request's list is also compared, untimed, with the fp32
scan's. One request is what the ranker does per call: the filter mask from ``FilterColumns`` (built once per
model version, as the ranker keeps it, with the genre/year/rating part kept per filter
combination; genres, year range, minimum rating, a few hundred watched movies excluded) and ``ItemIndex.top_n`` (matrix-vector product, mask,
``torch.topk``, copy to the host). Timings include the device synchronisation, since ``top_n``
brings its result back to the host.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from movierec.contracts.movies import MovieFilters
from movierec.models.config import FusionConfig
from movierec.serving.catalog import CatalogColumns
from movierec.serving.filters import FilterColumns
from movierec.serving.item_index import ItemIndex

GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
          "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")
FILTERS = MovieFilters(genres_include=["Comedy", "Drama", "Action"], genres_exclude=["Horror"], year_min=1980, min_avg_rating=2.5)
WATCHED = 300
"""Movies excluded per request, as for a user who has rated this many."""
SERVED_DIM = FusionConfig().served_dim
"""The width of the vectors the ranker serves (the fusion model's ranking head and item-item term)."""


@dataclass(frozen=True)
class ScalingResult:
    items: int
    dim: int
    device: str
    k: int
    repeats: int
    plain_ms_p50: float
    plain_ms_mean: float
    filtered_ms_p50: float
    filtered_ms_p95: float
    filtered_ms_mean: float
    mask_ms_p50: float
    build_ms: float = 0.0
    """Building the aligned filter columns, once per model version (not per request)."""
    mask_cold_ms_p50: float = 0.0
    """The mask for filters not seen before (their genre, year and rating part is then kept
    per filter combination, so ``mask_ms_p50`` is the usual request's cost)."""
    same_as_fp32: float = 1.0
    """Share of the filtered requests whose list equals the fp32 scan's (below 1 only where the
    int8 first pass can push a movie out of the shortlist)."""
    fp32_overlap: float = 1.0
    """Mean share of the fp32 scan's top-k that the filtered requests' lists hold."""

    def as_dict(self) -> dict:
        return asdict(self)


def synthetic_catalog(n: int, dim: int, device: torch.device, seed: int = 0, int8_first: bool = True) -> tuple[ItemIndex, CatalogColumns]:
    rng = np.random.default_rng(seed)
    movie_ids = np.arange(1, n + 1, dtype=np.int64)
    centres = rng.standard_normal((max(1, n // 100), dim), dtype=np.float32)
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors *= 0.3
    vectors += centres[rng.integers(0, len(centres), n)]
    vectors *= (rng.lognormal(0.0, 0.3, n) / np.sqrt(dim)).astype(np.float32)[:, None]
    vectors = torch.from_numpy(vectors).to(device)
    bias = torch.from_numpy(rng.normal(0, 0.1, n).astype(np.float32)).to(device)
    index = ItemIndex("synthetic", movie_ids, vectors, bias, ["text"], None, int8_first=int8_first)
    genre_bits = np.zeros(n, np.uint64)
    for _ in range(2):  # up to two genres per movie
        genre_bits |= np.left_shift(np.uint64(1), rng.integers(0, len(GENRES), n).astype(np.uint64))
    columns = CatalogColumns(
        movie_ids=movie_ids,
        years=rng.integers(1920, 2019, n).astype(np.float64),
        average_ratings=np.clip(rng.normal(3.3, 0.6, n), 0.5, 5.0),
        rating_counts=rng.integers(0, 300, n),
        genre_bits=genre_bits,
        genre_index={g: i for i, g in enumerate(GENRES)},
    )
    return index, columns


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(n: int, *, dim: int = SERVED_DIM, device: torch.device | str = "cpu", k: int = 20, repeats: int = 50, warmup: int = 5,
            seed: int = 0, int8_first: bool = True) -> ScalingResult:
    """Time ``repeats`` top-``k`` requests (after ``warmup``) over a synthetic catalog of ``n`` items
    (``int8_first=False``: without the int8 first pass of large CPU catalogs)."""
    device = torch.device(device)
    index, columns = synthetic_catalog(n, dim, device, seed, int8_first)
    t0 = time.perf_counter()
    filter_columns = FilterColumns.build(columns, index.movie_ids, device, row_of=index.rows)
    _sync(device)
    build_ms = (time.perf_counter() - t0) * 1e3
    rng = np.random.default_rng(seed + 1)
    users = rng.standard_normal((warmup + repeats, dim)).astype(np.float32)
    watched = [set(rng.integers(1, n + 1, WATCHED).tolist()) for _ in range(warmup + repeats)]
    plain, filtered, masks, cold, same, overlap = [], [], [], [], [], []
    for i in range(warmup + repeats):
        _sync(device)
        t0 = time.perf_counter()
        top = index.top_n(users[i], k)
        t1 = time.perf_counter()
        mask = filter_columns.mask(FILTERS, watched[i])
        _sync(device)
        t2 = time.perf_counter()
        top_filtered = index.top_n(users[i], k, mask)
        t3 = time.perf_counter()
        new_filters = FILTERS.model_copy(update={"year_min": 1870 + i % 100, "min_avg_rating": 2.5 + i / 1000})  # never seen
        t4 = time.perf_counter()
        filter_columns.mask(new_filters, watched[i])
        _sync(device)
        cold.append((time.perf_counter() - t4) * 1e3)
        if len(top) != min(k, n) or not top_filtered:
            raise RuntimeError(f"top-{k} over {n} items returned {len(top)} / {len(top_filtered)} items")
        if i >= warmup:
            exact = _fp32_top_k(index, users[i], k, mask)
            got = [s.movie_id for s in top_filtered]
            same.append(got == exact)
            overlap.append(len(set(got) & set(exact)) / max(1, len(exact)))
            plain.append((t1 - t0) * 1e3)
            masks.append((t2 - t1) * 1e3)
            filtered.append((t3 - t1) * 1e3)
    return ScalingResult(
        items=n, dim=dim, device=str(device), k=k, repeats=repeats,
        plain_ms_p50=round(float(np.median(plain)), 3), plain_ms_mean=round(float(np.mean(plain)), 3),
        filtered_ms_p50=round(float(np.median(filtered)), 3), filtered_ms_p95=round(float(np.percentile(filtered, 95)), 3),
        filtered_ms_mean=round(float(np.mean(filtered)), 3), mask_ms_p50=round(float(np.median(masks)), 3),
        build_ms=round(build_ms, 3), mask_cold_ms_p50=round(float(np.median(cold[warmup:])), 3),
        same_as_fp32=round(float(np.mean(same)), 4), fp32_overlap=round(float(np.mean(overlap)), 4),
    )


def _fp32_top_k(index: ItemIndex, user: np.ndarray, k: int, mask: torch.Tensor) -> list[int]:
    """The movie ids of the fp32 scan's top ``k`` among ``mask`` (what the int8 first pass approximates)."""
    scores = index.scores(user)
    scores[~mask] = float("-inf")
    values, rows = torch.topk(scores, k)
    return [int(index.movie_ids[r]) for v, r in zip(values.tolist(), rows.tolist()) if v != float("-inf")]


def run_scaling(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000), *, dim: int = SERVED_DIM, device: str = "cpu", k: int = 20,
                repeats: int = 50, seed: int = 0, int8_first: bool = True, progress=None) -> list[ScalingResult]:
    """``measure`` for every catalog size; ``progress`` (a callable) is told each result."""
    results = []
    for n in sizes:
        result = measure(n, dim=dim, device=device, k=k, repeats=repeats, seed=seed, int8_first=int8_first)
        if progress is not None:
            progress(result)
        results.append(result)
    return results
