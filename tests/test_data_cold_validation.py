"""The validation cut of a cold-item split's training part never touches its test movies."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data import DataError, load_dataset
from movierec.data.splits import COLD_ITEM_SHARE, cold_validation_split, make_split
from movierec.settings import Settings


@pytest.fixture(scope="module")
def vendored(tmp_path_factory):
    return load_dataset(Settings(home=tmp_path_factory.mktemp("home"), shared_dir=None))


@pytest.mark.parametrize("seed", [0, 1])
def test_validation_cold_movies_come_from_training_and_leave_the_fit_data(vendored, seed):
    split = make_split(vendored, "cold-item", seed)
    val = cold_validation_split(vendored, split)
    fit, held = val.train(vendored), val.test(vendored)
    # only the split's training rows, each exactly once
    assert np.array_equal(np.sort(np.concatenate([val.train_idx, val.test_idx])), np.sort(split.train_idx))
    assert not np.isin(val.cold_movie_ids, split.cold_movie_ids).any()
    assert not held["movie_id"].isin(split.cold_movie_ids).any() and not fit["movie_id"].isin(split.cold_movie_ids).any()
    # a validation movie has no rating left in the fit data, and every held-out rating is of one
    assert not fit["movie_id"].isin(val.cold_movie_ids).any()
    assert held["movie_id"].isin(val.cold_movie_ids).all()
    assert set(held["movie_id"]) == set(val.cold_movie_ids)
    n_train_movies = split.train(vendored)["movie_id"].nunique()
    assert len(val.cold_movie_ids) == round(n_train_movies * COLD_ITEM_SHARE)


def test_validation_cut_is_seeded(vendored):
    a = cold_validation_split(vendored, make_split(vendored, "cold-item", 0))
    b = cold_validation_split(vendored, make_split(vendored, "cold-item", 0))
    c = cold_validation_split(vendored, make_split(vendored, "cold-item", 1))
    assert np.array_equal(a.cold_movie_ids, b.cold_movie_ids) and np.array_equal(a.train_idx, b.train_idx)
    assert not np.array_equal(a.cold_movie_ids, c.cold_movie_ids)
    assert a.kind == "cold-item-validation" and a.dataset_version == vendored.version


def test_only_a_cold_item_split_is_cut(vendored):
    with pytest.raises(DataError, match="cold-item split, not 'random'"):
        cold_validation_split(vendored, make_split(vendored, "random", 0))
