"""The CPU half-precision scan of a large catalog returns exactly the fp32 top-k, and falls back to
the fp32 scan when its error bound cannot prove the shortlist holds the answer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from movierec.serving import item_index
from movierec.serving.item_index import HALF_SCAN_MIN_ITEMS, ItemIndex


def _index(n: int, dim: int = 32, seed: int = 0, ties: bool = False) -> ItemIndex:
    rng = np.random.default_rng(seed)
    vectors = (rng.standard_normal((n, dim)) / np.sqrt(dim)).astype(np.float32)
    if ties:  # many near-equal scores: rows that differ below half precision
        vectors[: n // 2] = vectors[0] + rng.normal(0, 1e-5, (n // 2, dim)).astype(np.float32)
    bias = rng.normal(0, 0.1, n).astype(np.float32)
    return ItemIndex("v", np.arange(1, n + 1), torch.from_numpy(vectors), torch.from_numpy(bias), ["text"], None)


def _fp32_top_k(index: ItemIndex, user: np.ndarray, k: int, keep: np.ndarray | None) -> list[int]:
    scores = index.scores(user)
    if keep is not None:
        scores[~torch.from_numpy(keep)] = float("-inf")
    values, rows = torch.topk(scores, k)
    return [int(index.movie_ids[i]) for v, i in zip(values.tolist(), rows.tolist()) if v != float("-inf")]


def test_small_catalogs_and_gpu_indexes_keep_the_plain_scan():
    assert _index(HALF_SCAN_MIN_ITEMS - 1)._half is None


@pytest.mark.parametrize("allowed_share", [1.0, 0.3, 0.0001])
def test_half_scan_matches_the_exact_top_k(allowed_share):
    index = _index(HALF_SCAN_MIN_ITEMS)
    assert index._half is not None
    rng = np.random.default_rng(1)
    for _ in range(5):
        user = rng.standard_normal(index.dim).astype(np.float32) * 3
        keep = None if allowed_share == 1.0 else rng.random(len(index)) < allowed_share
        got = [s.movie_id for s in index.top_n(user, 20, None if keep is None else torch.from_numpy(keep))]
        assert got == _fp32_top_k(index, user, 20, keep)


def test_near_ties_below_half_precision_fall_back_to_the_exact_scan(monkeypatch):
    index = _index(HALF_SCAN_MIN_ITEMS, ties=True)
    user = index.vectors[0].numpy() * 50  # the tied rows are the best, apart by less than fp16 resolves
    monkeypatch.setattr(item_index, "SHORTLIST_MARGIN", 2)
    assert index._top_n_half(user, 20, None) is None
    got = [s.movie_id for s in index.top_n(user, 20)]
    assert got == _fp32_top_k(index, user, 20, None)
