"""The CPU int8 first pass of a large catalog: its shortlist, rescored in fp32, gives the fp32
top-k on ordinary data, with fp32 scores; movies added or replaced after the int8 copy was built
are scored in fp32; small catalogs keep the plain scan."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from movierec.serving.int8_scan import MIN_ITEMS, int8_supported
from movierec.serving.item_index import ItemIndex

pytestmark = pytest.mark.skipif(not int8_supported(), reason="this torch build has no fbgemm/x86 int8 kernels")


@pytest.fixture(scope="module")
def index() -> ItemIndex:
    rng = np.random.default_rng(0)
    vectors = (rng.standard_normal((MIN_ITEMS, 32)) / np.sqrt(32)).astype(np.float32)
    bias = rng.normal(0, 0.1, MIN_ITEMS).astype(np.float32)
    return ItemIndex("v", np.arange(1, MIN_ITEMS + 1), torch.from_numpy(vectors), torch.from_numpy(bias), ["text"], None)


def _fp32_top_k(index: ItemIndex, user: np.ndarray, k: int, keep: np.ndarray | None = None) -> list[tuple[int, float]]:
    scores = index.scores(user)
    if keep is not None:
        scores[~torch.from_numpy(keep)] = float("-inf")
    values, rows = torch.topk(scores, k)
    return [(int(index.movie_ids[i]), v) for v, i in zip(values.tolist(), rows.tolist()) if v != float("-inf")]


def test_small_catalogs_keep_the_plain_scan():
    small = ItemIndex("v", np.arange(1, MIN_ITEMS), torch.zeros(MIN_ITEMS - 1, 4), torch.zeros(MIN_ITEMS - 1), ["text"], None)
    assert small._int8 is None


def test_int8_scores_are_close_to_fp32(index):
    user = np.random.default_rng(2).standard_normal(index.dim).astype(np.float32)
    coarse = index._int8.scores(torch.from_numpy(user)) + index.bias
    exact = index.scores(user)
    assert float((coarse - exact).abs().max()) < 0.02 * float(exact.abs().max())


@pytest.mark.parametrize("allowed_share", [1.0, 0.3, 0.0001])
def test_the_shortlist_gives_the_fp32_top_k_with_fp32_scores(index, allowed_share):
    rng = np.random.default_rng(1)
    for scale in (0.05, 1.0, 20.0):
        user = (rng.standard_normal(index.dim) * scale).astype(np.float32)
        keep = None if allowed_share == 1.0 else rng.random(len(index)) < allowed_share
        got = index.top_n(user, 20, None if keep is None else torch.from_numpy(keep))
        exact = _fp32_top_k(index, user, 20, keep)
        assert [s.movie_id for s in got] == [m for m, _ in exact]
        np.testing.assert_allclose([s.score for s in got], [v for _, v in exact], rtol=1e-6)


def test_added_and_replaced_movies_are_scored_in_fp32(index):
    rng = np.random.default_rng(5)
    user = rng.standard_normal(index.dim).astype(np.float32)
    best = [m for m, _ in _fp32_top_k(index, user, 20)]
    added = index.with_item(10**7, user / np.linalg.norm(user) * 3, 0.0, {})
    replaced = added.with_item(best[0], -user / np.linalg.norm(user), 0.0, {})
    assert replaced._int8 is index._int8  # carried over, not rebuilt
    for changed in (added, replaced):
        assert [s.movie_id for s in changed.top_n(user, 20)] == [m for m, _ in _fp32_top_k(changed, user, 20)]
    got = [s.movie_id for s in replaced.top_n(user, 20)]
    assert got[0] == 10**7 and best[0] not in got
