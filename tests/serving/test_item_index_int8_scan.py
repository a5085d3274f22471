"""The CPU int8 scan of a large catalog returns exactly the fp32 top-k: its error bound holds, it
falls back to the fp32 scan when the bound cannot prove the shortlist holds the answer, and
movies added or replaced after the int8 copy was built are scored in fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from movierec.serving import item_index
from movierec.serving.int8_scan import MIN_ITEMS, int8_supported
from movierec.serving.item_index import ItemIndex

pytestmark = pytest.mark.skipif(not int8_supported(), reason="this torch build has no fbgemm/x86 int8 kernels")


def _index(n: int = MIN_ITEMS, dim: int = 32, seed: int = 0, ties: bool = False) -> ItemIndex:
    rng = np.random.default_rng(seed)
    vectors = (rng.standard_normal((n, dim)) / np.sqrt(dim)).astype(np.float32)
    if ties:  # many near-equal scores: rows that differ below int8 resolution
        vectors[: n // 2] = vectors[0] + rng.normal(0, 1e-5, (n // 2, dim)).astype(np.float32)
    bias = rng.normal(0, 0.1, n).astype(np.float32)
    return ItemIndex("v", np.arange(1, n + 1), torch.from_numpy(vectors), torch.from_numpy(bias), ["text"], None)


@pytest.fixture(scope="module")
def index() -> ItemIndex:
    return _index()


def _fp32_top_k(index: ItemIndex, user: np.ndarray, k: int, keep: np.ndarray | None = None) -> list[int]:
    scores = index.scores(user)
    if keep is not None:
        scores[~torch.from_numpy(keep)] = float("-inf")
    values, rows = torch.topk(scores, k)
    return [int(index.movie_ids[i]) for v, i in zip(values.tolist(), rows.tolist()) if v != float("-inf")]


def _users(dim: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Users of several kinds: scaled normal, one-signed, sparse, one dominant component."""
    normal = [rng.standard_normal(dim) * s for s in (0.05, 1.0, 20.0)]
    one_signed = np.abs(rng.standard_normal(dim))
    sparse = np.where(rng.random(dim) < 0.1, rng.standard_normal(dim), 0.0)
    spike = rng.standard_normal(dim) * 0.01
    spike[3] = 5.0
    return [u.astype(np.float32) for u in (*normal, one_signed, sparse, spike)]


def test_small_catalogs_keep_the_plain_scan():
    assert _index(MIN_ITEMS - 1)._int8 is None


def test_the_error_bound_holds_for_every_row(index):
    rng = np.random.default_rng(3)
    for user in _users(index.dim, rng):
        u = torch.from_numpy(user)
        coarse = index._int8.scores(u) + index.bias
        error = float((coarse - index.scores(user)).abs().max())
        bound = index._int8.error_bound(u, index._bias_max)
        assert error <= bound
        assert bound < 1.0 * float(u.norm())  # a bound that proves nothing would make every request fall back


@pytest.mark.parametrize("allowed_share", [1.0, 0.3, 0.0001])
def test_int8_scan_matches_the_exact_top_k(index, allowed_share):
    rng = np.random.default_rng(1)
    proved = 0
    for user in _users(index.dim, rng):
        keep = None if allowed_share == 1.0 else rng.random(len(index)) < allowed_share
        mask = None if keep is None else torch.from_numpy(keep)
        proved += index._top_n_int8(user, 20, mask) is not None
        got = [s.movie_id for s in index.top_n(user, 20, mask)]
        assert got == _fp32_top_k(index, user, 20, keep)
    assert proved >= 4  # the int8 path itself answered most of them


def test_near_ties_below_int8_resolution_fall_back_to_the_exact_scan(monkeypatch):
    index = _index(ties=True)
    user = index.vectors[0].numpy() * 50  # the tied rows are the best, apart by less than int8 resolves
    monkeypatch.setattr(item_index, "SHORTLIST_MARGIN", 2)
    assert index._top_n_int8(user, 20, None) is None
    got = [s.movie_id for s in index.top_n(user, 20)]
    assert got == _fp32_top_k(index, user, 20)


def test_added_and_replaced_movies_are_scored_in_fp32(index):
    rng = np.random.default_rng(5)
    user = rng.standard_normal(index.dim).astype(np.float32)
    best = _fp32_top_k(index, user, 20)
    added = index.with_item(10**7, user / np.linalg.norm(user) * 3, 0.0, {})
    replaced = added.with_item(best[0], -user / np.linalg.norm(user), 0.0, {})
    assert replaced._int8 is index._int8  # carried over, not rebuilt
    for changed in (added, replaced):
        assert changed._top_n_int8(user, 20, None) is not None
        assert [s.movie_id for s in changed.top_n(user, 20)] == _fp32_top_k(changed, user, 20)
    got = [s.movie_id for s in replaced.top_n(user, 20)]
    assert got[0] == 10**7 and best[0] not in got
