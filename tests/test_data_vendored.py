"""The vendored ml-latest-small, joined with ../shared, as the rest of the system sees it."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data import load_dataset
from movierec.data.splits import get_split, make_split, read_split, split_path
from movierec.data.summary import coverage
from movierec.settings import Settings


@pytest.fixture(scope="module")
def vendored(tmp_path_factory):
    return load_dataset(Settings(home=tmp_path_factory.mktemp("home"), shared_dir=None))


def test_vendored_counts(vendored):
    assert len(vendored.ratings) == 100_836
    assert vendored.ratings["user_id"].nunique() == 610
    assert len(vendored.catalog) == 9_742
    assert vendored.report.duplicate_ratings == 0 and vendored.report.unknown_movie_ratings == 0


def test_vendored_mmtf_features(vendored):
    iv, avf = vendored.trailer_features["ivector"], vendored.trailer_features["avf"]
    assert iv.dim == 40 and avf.dim == 107
    assert 1_700 < len(iv.movie_ids) <= 1_807 and 1_700 < len(avf.movie_ids) <= 1_807
    assert np.isin(iv.movie_ids, vendored.catalog.index).all()
    assert iv.matrix.dtype == np.float32 and np.isfinite(iv.matrix).all()


def test_coverage_with_shared(shared_settings):
    ds = load_dataset(shared_settings)
    cov = {row.modality: row for row in coverage(ds)}
    assert cov["text"].movie_share == 1.0
    # ../shared/README.md: posters for 9,517 movies (99.5% of ratings); plots 1,295 movies (67%)
    assert cov["poster"].movies == 9_517 and cov["poster"].rating_share == pytest.approx(0.995, abs=0.003)
    assert cov["plot"].movies == pytest.approx(1_295, abs=5) and cov["plot"].rating_share == pytest.approx(0.67, abs=0.01)
    assert cov["trailer_ivector"].rating_share == pytest.approx(0.49, abs=0.01)
    assert cov["trailer_audio"].movies == 0  # no raw trailer audio can be had here
    assert ds.catalog["runtime"].notna().sum() > 1_200
    assert ds.catalog.loc[1, "youtube_id"] == "K26_sDKnvMU"


def test_missing_optional_sources_are_reported_not_fatal(bare_settings):
    ds = load_dataset(bare_settings)
    cov = {row.modality: row for row in coverage(ds)}
    assert cov["poster"].movies == 0 and cov["plot"].movies == 0
    assert "trailer_ivector" not in cov
    assert len(ds.report.missing_optional) >= 4


@pytest.mark.parametrize("kind", ["random", "temporal", "cold-item"])
def test_splits_are_deterministic_disjoint_and_saved(vendored, tmp_path, kind):
    a = get_split(vendored, kind, 1, tmp_path)
    assert split_path(tmp_path, vendored, kind, 1).exists()
    b = make_split(vendored, kind, 1)
    assert np.array_equal(a.train_idx, b.train_idx) and np.array_equal(a.test_idx, b.test_idx)
    assert len(np.intersect1d(a.train_idx, a.test_idx)) == 0
    assert len(a.train_idx) + len(a.test_idx) == len(vendored.ratings)
    again = read_split(split_path(tmp_path, vendored, kind, 1))
    assert np.array_equal(again.test_idx, a.test_idx) and again.dataset_version == vendored.version


def test_random_split_share_and_seed(vendored):
    s0, s1 = make_split(vendored, "random", 0), make_split(vendored, "random", 1)
    assert len(s0.test_idx) == pytest.approx(0.1 * len(vendored.ratings), abs=1)
    assert not np.array_equal(s0.test_idx, s1.test_idx)


def test_temporal_split_tests_each_users_latest(vendored):
    s = make_split(vendored, "temporal", 0)
    train, test = s.train(vendored), s.test(vendored)
    last_train = train.groupby("user_id")["timestamp"].max()
    first_test = test.groupby("user_id")["timestamp"].min()
    assert (first_test >= last_train.reindex(first_test.index)).all()


def test_cold_item_split_removes_movies_from_training(vendored):
    s = make_split(vendored, "cold-item", 0)
    train, test = s.train(vendored), s.test(vendored)
    assert not train["movie_id"].isin(s.cold_movie_ids).any()
    assert set(test["movie_id"]) <= set(s.cold_movie_ids)
    assert len(s.cold_movie_ids) == round(0.1 * vendored.ratings["movie_id"].nunique())


def test_split_for_other_data_version_is_rebuilt(vendored, tmp_path):
    split = get_split(vendored, "random", 0, tmp_path)
    path = split_path(tmp_path, vendored, "random", 0)
    from movierec.data.splits import save_split
    split.dataset_version = "stale"
    save_split(split, path)
    assert get_split(vendored, "random", 0, tmp_path).dataset_version == vendored.version
