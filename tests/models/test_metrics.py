from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from movierec.evaluation.metrics import TIE_ORDER_SEED, like_classification, mae, mean_and_spread, ndcg_at_k, recall_at_k, rmse, t_interval95, top_k
from movierec.evaluation.protocol import cold_item_metrics, cold_split_metrics, topk_metrics


def test_rmse_and_mae_by_hand():
    pred, actual = np.array([3.0, 4.0, 5.0]), np.array([4.0, 4.0, 3.0])
    assert rmse(pred, actual) == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    assert mae(pred, actual) == pytest.approx(1.0)


def test_like_classification_by_hand():
    pred = np.array([4.5, 3.0, 4.0, 2.0])
    actual = np.array([5.0, 4.0, 3.0, 1.0])
    m = like_classification(pred, actual)
    # guesses like, -, like, -; truth like, like, -, -: tp 1, fp 1, fn 1, tn 1
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)
    # pairs (liked, not liked): (4.5>4.0)(4.5>2.0)(3.0<4.0)(3.0>2.0) -> 3 of 4
    assert m["auc"] == pytest.approx(0.75)


def test_recall_and_ndcg_by_hand():
    ranked = np.array([10, 20, 30, 40])
    relevant = {20, 40, 99}
    assert recall_at_k(ranked, relevant, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranked, relevant, 4) == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranked, relevant, 4) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(np.array([20, 40, 99]), relevant, 3) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        recall_at_k(ranked, set(), 2)


def test_top_k_orders_best_first_and_never_picks_minus_inf():
    scores = np.array([[0.1, 0.9, -np.inf, 0.5], [3.0, 1.0, 2.0, -np.inf]])
    np.testing.assert_array_equal(top_k(scores, 2), [[1, 3], [0, 2]])


def test_top_k_breaks_ties_by_one_fixed_shuffle_of_the_columns():
    scores = np.array([[1.0, 2.0, 1.0, 2.0, 1.0, 0.0],   # 3 tied 1.0s for 2 places at the cut
                       [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],   # all tied
                       [-np.inf, 5.0, -np.inf, -np.inf, -np.inf, -np.inf]])  # fewer finite than k
    rank_in_shuffle = np.argsort(np.random.default_rng(TIE_ORDER_SEED).permutation(6))
    def by_shuffle(cols):
        return sorted(cols, key=lambda c: rank_in_shuffle[c])
    best = top_k(scores, 4)
    np.testing.assert_array_equal(best[0], by_shuffle([1, 3]) + by_shuffle([0, 2, 4])[:2])
    np.testing.assert_array_equal(best[1], by_shuffle(range(6))[:4])
    np.testing.assert_array_equal(best[2], [1] + by_shuffle([0, 2, 3, 4, 5])[:3])
    np.testing.assert_array_equal(top_k(scores, 4), best)  # the same scores, the same lists


def test_top_k_does_not_credit_a_constant_model_with_the_catalogs_order():
    # every score tied: the picked columns are spread over the catalog, not its first k
    picked = top_k(np.zeros((1, 10_000)), 100)[0]
    assert 3_000 < picked.mean() < 7_000 and picked.max() > 9_000 and picked.min() < 1_000


def test_top_k_fills_the_cut_from_the_tied_scores_only():
    shuffled = np.random.default_rng(0).permutation(1000)
    many = np.repeat(np.arange(10.0), 100)[shuffled][None, :]  # 100 ties on each of 10 values
    picked = top_k(many, 150)[0]
    assert set(picked[:100]) == set(np.flatnonzero(many[0] == 9.0))
    assert set(picked[100:]) <= set(np.flatnonzero(many[0] == 8.0)) and len(set(picked[100:])) == 50


def test_mean_and_spread():
    assert mean_and_spread([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert mean_and_spread([4.0]) == (4.0, 0.0)


def test_t_interval95_by_hand():
    # n = 3: t(0.975, 2) = 4.3027; sd = 1; half-width = 4.3027 / sqrt(3)
    mean, sd, half = t_interval95([1.0, 2.0, 3.0])
    assert (mean, sd) == pytest.approx((2.0, 1.0))
    assert half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    mean, sd, half = t_interval95([5.0])
    assert mean == 5.0 and math.isnan(sd) and math.isnan(half)


class FixedScores:
    """Scores a movie by its id: the highest ids rank first, for every user."""

    def predict(self, user_ids, movie_ids):
        raise NotImplementedError

    def rank_scores(self, user_ids, movie_ids):
        return np.tile(np.asarray(movie_ids, float), (len(user_ids), 1))


def test_topk_protocol_excludes_training_movies_and_uses_liked_test_positives():
    train = pd.DataFrame({"user_id": [1, 1], "movie_id": [5, 4], "rating": [5.0, 1.0]})
    test = pd.DataFrame({"user_id": [1, 1, 2], "movie_id": [3, 1, 5], "rating": [4.0, 2.0, 5.0]})
    m = topk_metrics(FixedScores(), train, test, np.arange(1, 6), k=1)
    # user 2 has no training ratings: not evaluated; user 1's best unseen movie is 3, a positive
    assert m["users"] == 1
    assert m["recall@1"] == pytest.approx(1.0)
    assert m["ndcg@1"] == pytest.approx(1.0)


def test_cold_item_protocol_ranks_only_held_out_movies():
    test = pd.DataFrame({"user_id": [1, 1, 2], "movie_id": [7, 8, 8], "rating": [4.5, 4.0, 2.0]})
    m = cold_item_metrics(FixedScores(), test, np.array([7, 8, 9]), k=1)
    # only user 1 liked a cold movie; movie 9 ranks first and is not liked
    assert m["users"] == 1
    assert m["recall@1"] == 0.0


def test_cold_split_also_ranks_the_held_out_movies_among_the_whole_catalog():
    # scores are the movie ids: higher ids rank first; movies 5 and 6 are the cold ones
    train = pd.DataFrame({"user_id": [1], "movie_id": [9], "rating": [4.0]})
    test = pd.DataFrame({"user_id": [1, 1], "movie_id": [5, 8], "rating": [4.5, 5.0]})
    m = cold_split_metrics(FixedScores(), train, test, np.array([5, 6]), np.arange(1, 10), k=2)
    # among the cold movies alone, user 1 sees 6 then 5: their liked 5 is found at rank 2
    assert m["cold_recall@2"] == pytest.approx(1.0)
    assert m["cold_ndcg@2"] == pytest.approx(1 / np.log2(3))
    # in the whole catalog (minus 9, rated in training) the warm 8 and 7 come first; the liked
    # warm movie 8 is not a positive of this view, so nothing is found
    assert m["cold_catalog_recall@2"] == 0.0 and m["cold_catalog_ndcg@2"] == 0.0


def test_like_classification_can_cut_predictions_below_the_like_threshold():
    predicted, actual = np.array([3.7, 3.5, 4.2]), np.array([4.0, 3.0, 5.0])
    at_four = like_classification(predicted, actual, 4.0)
    assert at_four["accuracy"] == pytest.approx(2 / 3) and at_four["recall"] == pytest.approx(0.5)
    lower = like_classification(predicted, actual, 4.0, cut=3.6)
    assert lower["accuracy"] == 1.0 and lower["precision"] == 1.0 and lower["recall"] == 1.0
