"""The ranker scaling benchmark runs the real serving code and its figures are well formed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from movierec.benchmarks.ranker_scaling import FILTERS, measure, synthetic_catalog
from movierec.serving.filters import allowed_mask

MOVIEREC = str(Path(sys.executable).parent / "movierec")


def test_synthetic_top_n_matches_a_brute_force_ranking():
    index, columns = synthetic_catalog(2_000, 16, torch.device("cpu"), seed=3)
    user = np.random.default_rng(1).standard_normal(16).astype(np.float32)
    mask = allowed_mask(columns, index.movie_ids, FILTERS)
    assert 0 < mask.sum() < len(mask)  # the filters keep some movies and drop others
    scores = index.vectors.numpy() @ user + index.bias.numpy()
    expected = index.movie_ids[mask][np.argsort(-scores[mask])[:20]]
    assert [s.movie_id for s in index.top_n(user, 20, mask)] == expected.tolist()


def test_measure_reports_positive_ordered_figures():
    result = measure(5_000, dim=16, repeats=5)
    assert result.items == 5_000 and result.device == "cpu" and result.k == 20
    assert 0 < result.filtered_ms_p50 <= result.filtered_ms_p95
    assert result.mask_ms_p50 > 0 and result.plain_ms_p50 > 0
    assert result.same_as_fp32 == 1.0 and result.fp32_overlap == 1.0  # below 10^5 items the scan is fp32's itself


def test_measure_compares_the_int8_lists_with_the_fp32_scan():
    from movierec.serving.int8_scan import MIN_ITEMS

    result = measure(MIN_ITEMS, dim=16, repeats=5)
    assert 0.0 <= result.same_as_fp32 <= 1.0 and 0.9 <= result.fp32_overlap <= 1.0


def test_synthetic_vectors_are_clustered_with_unequal_norms():
    index, _ = synthetic_catalog(10_000, 16, torch.device("cpu"))
    norms = index.vectors.norm(dim=1)
    assert float(norms.max() / norms.median()) > 1.8
    unit = torch.nn.functional.normalize(index.vectors, dim=1)
    nearest = (unit[:200] @ unit.T).topk(2, dim=1).values[:, 1]  # each of 200 items' closest other item
    assert float(nearest.median()) > 0.8  # clustered: an item's closest neighbour is near it


def test_cli_rejects_bad_sizes_in_one_line():
    result = subprocess.run([MOVIEREC, "bench", "ranker", "--sizes", "ten"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--sizes" in result.stderr and "Traceback" not in result.stderr


def _small_catalog_and_model(seed: int = 0):
    from movierec.models.recommender import Recommender
    from movierec.models.serving import ServingArtifact
    from movierec.serving.catalog import CatalogMovie, MovieCatalog, UserRatings

    rng = np.random.default_rng(seed)
    genres = ("Comedy", "Drama", "Action")
    movies = {m: CatalogMovie(m, f"Movie {m}", int(1950 + m % 70), (genres[m % 3],), average_rating=float(1 + m % 5), rating_count=3)
              for m in range(1, 301)}
    users = {u: {int(m): 4.0 for m in rng.choice(np.arange(1, 301), 10, replace=False)} for u in range(1, 21)}
    art = ServingArtifact(
        version="tiny", movie_ids=np.arange(1, 301), item_vectors=rng.normal(size=(300, 8)), item_bias=np.zeros(300),
        user_ids=np.arange(1, 21), user_vectors=rng.normal(size=(20, 8)), user_bias=np.zeros(20), global_mean=3.5,
    )
    return MovieCatalog(movies=movies, user_ratings=UserRatings.from_dicts(users)), Recommender(art, None)


def test_served_ranker_figures_over_seeds():
    from movierec.benchmarks.ranker_served import measure_served

    catalog, recommender = _small_catalog_and_model()
    result = measure_served(catalog, recommender, "cpu", seeds=(0, 1), requests=5, k=10)
    assert result.model_version == "tiny" and result.items == 300 and result.seeds == [0, 1]
    assert 0 < result.p50_ms_mean <= result.p95_ms_mean and result.p50_ms_std >= 0
    assert result.same_lists_as_cpu is None  # only compared on a GPU


def test_cli_served_without_a_model_fails_in_one_line(tmp_path):
    env = {**os.environ, "MOVIEREC_HOME": str(tmp_path)}
    result = subprocess.run([MOVIEREC, "bench", "ranker", "--sizes", "1000", "--served"], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "--model-dir" in result.stderr and "Traceback" not in result.stderr


def test_cli_saves_its_record_with_the_reports_it_feeds(tmp_path):
    """The record lives in <reports-dir>/measurements/ (committed), where `bench serving` reads it."""
    import json

    from movierec.benchmarks.records import load_record, ranker_record_path

    env = {**os.environ, "MOVIEREC_HOME": str(tmp_path / "home")}
    result = subprocess.run([MOVIEREC, "bench", "ranker", "--sizes", "1000", "--repeats", "2", "--reports-dir", str(tmp_path / "reports")],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    record = load_record(ranker_record_path(tmp_path / "reports", "cpu"))
    assert record["device"] == "cpu" and [r["items"] for r in record["results"]] == [1000]
    assert json.loads((tmp_path / "reports" / "measurements" / "ranker_cpu.json").read_text()) == record


def test_without_the_int8_first_pass_the_index_scans_fp32_and_the_cli_keeps_the_saved_record(tmp_path):
    from movierec.serving.int8_scan import MIN_ITEMS

    assert synthetic_catalog(MIN_ITEMS, 8, torch.device("cpu"))[0]._int8 is not None
    fp32_only = synthetic_catalog(MIN_ITEMS, 8, torch.device("cpu"), int8_first=False)[0]
    assert fp32_only._int8 is None and fp32_only.with_item(-1, np.ones(8), 0.0, {})._int8 is None
    env = {**os.environ, "MOVIEREC_HOME": str(tmp_path / "home")}
    result = subprocess.run([MOVIEREC, "bench", "ranker", "--sizes", "1000", "--repeats", "2", "--no-int8-first",
                             "--reports-dir", str(tmp_path / "reports")], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "fp32 only" in result.stdout and not (tmp_path / "reports" / "measurements").exists()
