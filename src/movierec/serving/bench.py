"""Latency of top-N serving, per device: ``python -m movierec.serving.bench``.

Two measurements, each repeated over seeds (different users / query vectors per seed):

- ``ranker``: the ranker's whole top-N path (user lookup, filters over the catalog, one matrix
  product, top-k, "because you liked" neighbours) on ml-latest-small, for the served model in
  ``--artifact`` or, without one, a random artifact of the catalog's size (latency does not
  depend on the values);
- ``index``: ``ItemIndex.top_n`` alone over ``--scale`` random items (how it grows with the
  catalog).

On a machine with CUDA both run on CPU and GPU, and the GPU's top-N lists are checked against
the CPU's. Prints one line per (measurement, device) with p50/p95 in ms as mean ± std over seeds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from movierec.contracts.movies import MovieFilters
from movierec.contracts.ranker import TopNRequest
from movierec.models.recommender import Recommender, load_recommender
from movierec.models.serving import ServingArtifact
from movierec.serving.catalog import MovieCatalog
from movierec.serving.item_index import ItemIndex
from movierec.serving.ranker import Ranker


def random_artifact(catalog: MovieCatalog, dim: int, seed: int = 0) -> ServingArtifact:
    rng = np.random.default_rng(seed)
    movies = np.array(sorted(catalog.movies), np.int64)
    users = np.array(sorted(catalog.user_ratings), np.int64)
    return ServingArtifact(
        version=f"random-{dim}d", movie_ids=movies, item_vectors=rng.normal(size=(len(movies), dim)).astype(np.float32),
        item_bias=np.zeros(len(movies), np.float32), user_ids=users, user_vectors=rng.normal(size=(len(users), dim)).astype(np.float32),
        user_bias=np.zeros(len(users), np.float32), global_mean=3.5,
    )


def percentiles(samples: list[float]) -> tuple[float, float]:
    arr = np.array(samples) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def bench_ranker(catalog: MovieCatalog, recommender: Recommender, device: torch.device, seeds: list[int], requests: int, k: int):
    ranker = Ranker(catalog=catalog, device=device, loader=lambda _folder: recommender)
    ranker.load(Path("."))
    filters = [MovieFilters(), MovieFilters(genres_include=["Comedy", "Drama"], year_min=1990, min_avg_rating=3.0)]
    users = np.array(sorted(catalog.user_ratings))
    per_seed, lists = [], {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        times = []
        for i in range(requests):
            uid = int(rng.choice(users))
            request = TopNRequest(user_id=uid, k=k, filters=filters[i % 2])
            start = time.perf_counter()
            got = ranker.top_n(request)
            times.append(time.perf_counter() - start)
            lists[(seed, i)] = [s.movie_id for s in got.items]
        per_seed.append(percentiles(times[10:]))  # the first calls warm up kernels and caches
    return per_seed, lists


def bench_index(n: int, dim: int, device: torch.device, seeds: list[int], requests: int, k: int):
    rng = np.random.default_rng(1234)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    index = ItemIndex("scale", np.arange(1, n + 1), torch.from_numpy(vectors).to(device), torch.zeros(n, device=device), [], None)
    per_seed, lists = [], {}
    for seed in seeds:
        qrng = np.random.default_rng(seed)
        times = []
        for i in range(requests):
            u = qrng.normal(size=dim).astype(np.float32)
            start = time.perf_counter()
            got = index.top_n(u, k)
            times.append(time.perf_counter() - start)
            lists[(seed, i)] = [s.movie_id for s in got]
        per_seed.append(percentiles(times[10:]))
    return per_seed, lists


def summary(per_seed: list[tuple[float, float]]) -> str:
    p50 = [p[0] for p in per_seed]
    p95 = [p[1] for p in per_seed]
    spread = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
    return f"p50 {statistics.mean(p50):.3f} ± {spread(p50):.3f} ms, p95 {statistics.mean(p95):.3f} ± {spread(p95):.3f} ms"


def agreement(a: dict, b: dict) -> float:
    """Share of requests whose top-N lists are identical on both devices."""
    return sum(a[key] == b[key] for key in a) / max(len(a), 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifact", type=Path, default=None, help="a model folder (default: a random artifact of the catalog's size)")
    parser.add_argument("--dim", type=int, default=64, help="vector width of the random artifact")
    parser.add_argument("--scale", type=int, default=1_000_000, help="items in the index-only measurement (0: skip)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the ranker's default is 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]

    from movierec.data import load_dataset

    catalog = MovieCatalog.from_dataset(load_dataset())
    recommender = load_recommender(args.artifact) if args.artifact else Recommender(random_artifact(catalog, args.dim), None)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"model {recommender.artifact.version}: {len(recommender.artifact.movie_ids)} items x {recommender.artifact.dim} dims; "
          f"k={args.k}, {args.requests} requests per seed, seeds {seeds}; devices {[str(d) for d in devices]}"
          + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""))
    results = {}
    for device in devices:
        per_seed, lists = bench_ranker(catalog, recommender, device, seeds, args.requests, args.k)
        results[("ranker", device.type)] = lists
        print(f"ranker top-{args.k} with filters  {device.type:4s}  {summary(per_seed)}")
    if args.scale:
        for device in devices:
            per_seed, lists = bench_index(args.scale, args.dim, device, seeds, args.requests, args.k)
            results[("index", device.type)] = lists
            print(f"index top-{args.k} over {args.scale:,} items  {device.type:4s}  {summary(per_seed)}")
    if len(devices) > 1:
        for what in ("ranker", "index"):
            if (what, "cuda") in results:
                print(f"{what}: identical top-{args.k} lists on cuda and cpu for {agreement(results[(what, 'cpu')], results[(what, 'cuda')]):.1%} of requests")


if __name__ == "__main__":
    main()
