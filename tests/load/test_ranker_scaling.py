"""The ranker scaling benchmark runs the real serving code and its figures are well formed."""

from __future__ import annotations

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


def test_cli_rejects_bad_sizes_in_one_line():
    result = subprocess.run([MOVIEREC, "bench", "ranker", "--sizes", "ten"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--sizes" in result.stderr and "Traceback" not in result.stderr
