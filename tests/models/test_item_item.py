from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from movierec.models.item_item import EaseWeights, fit_item_item, truncated_svd


def _ease_by_definition(x: np.ndarray, l2: float) -> np.ndarray:
    """Steck's closed form, written out: B = I - P diag(1 / diag(P)), P = (X^T X + lambda I)^-1."""
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    return np.eye(x.shape[1]) - p / np.diag(p)[None, :]


@pytest.mark.parametrize("shape", [(6, 15), (30, 8)], ids=["fewer-users-than-movies", "more-users-than-movies"])
def test_ease_weights_match_the_closed_form_on_both_sides(shape):
    x = (np.random.default_rng(0).random(shape) < 0.4).astype(float)
    b = EaseWeights(sparse.csr_matrix(x), l2=2.0)
    expected = _ease_by_definition(x, 2.0)
    np.testing.assert_allclose(b.toarray(), expected, atol=1e-10)
    q = np.random.default_rng(1).standard_normal((shape[1], 3))
    np.testing.assert_allclose(b.transpose_matmul(q), expected.T @ q, atol=1e-10)
    np.testing.assert_allclose(np.diag(b.toarray()), 0, atol=1e-12)


def _ridge_without_itself(x: np.ndarray, y: np.ndarray, l2: float, count_l2: float = 0.0) -> np.ndarray:
    """Column j of B by its definition: the ridge regression of y's column j on x's other columns,
    movie k's coefficient penalised by ``l2 + count_l2 * (times k was rated)``."""
    n = x.shape[1]
    penalty = l2 + count_l2 * x.sum(axis=0)
    b = np.zeros((n, n))
    for j in range(n):
        others = np.arange(n) != j
        xo = x[:, others]
        b[others, j] = np.linalg.solve(xo.T @ xo + np.diag(penalty[others]), xo.T @ y[:, j])
    return b


@pytest.mark.parametrize("shape", [(6, 15), (30, 8)], ids=["fewer-users-than-movies", "more-users-than-movies"])
def test_ease_weights_with_a_weighted_target_solve_each_movies_ridge_regression(shape):
    rng = np.random.default_rng(3)
    x = (rng.random(shape) < 0.4).astype(float)
    y = x * np.where(rng.random(shape) < 0.5, 1.0, 0.3)  # some rated movies count for less in the target
    b = EaseWeights(sparse.csr_matrix(x), l2=2.0, y=sparse.csr_matrix(y))
    expected = _ridge_without_itself(x, y, 2.0)
    np.testing.assert_allclose(b.toarray(), expected, atol=1e-10)
    q = rng.standard_normal((shape[1], 3))
    np.testing.assert_allclose(b.transpose_matmul(q), expected.T @ q, atol=1e-10)
    # the plain target is plain EASE
    np.testing.assert_allclose(_ridge_without_itself(x, x, 2.0), _ease_by_definition(x, 2.0), atol=1e-10)
    np.testing.assert_allclose(EaseWeights(sparse.csr_matrix(x), l2=2.0, y=sparse.csr_matrix(x)).toarray(),
                               _ease_by_definition(x, 2.0), atol=1e-10)


@pytest.mark.parametrize("shape", [(6, 15), (30, 8)], ids=["fewer-users-than-movies", "more-users-than-movies"])
def test_a_per_rating_penalty_holds_each_movie_back_by_how_often_it_was_rated(shape):
    rng = np.random.default_rng(5)
    x = (rng.random(shape) < 0.4).astype(float)
    y = x * np.where(rng.random(shape) < 0.5, 1.0, 0.3)
    b = EaseWeights(sparse.csr_matrix(x), l2=2.0, y=sparse.csr_matrix(y), count_l2=0.7)
    expected = _ridge_without_itself(x, y, 2.0, count_l2=0.7)
    np.testing.assert_allclose(b.toarray(), expected, atol=1e-10)
    q = rng.standard_normal((shape[1], 3))
    np.testing.assert_allclose(b.transpose_matmul(q), expected.T @ q, atol=1e-10)
    assert not np.allclose(expected, _ridge_without_itself(x, y, 2.0), atol=1e-3)  # the penalty matters here


def test_fit_item_item_regresses_on_the_target_it_is_given():
    rng = np.random.default_rng(4)
    x = (rng.random((10, 7)) < 0.5).astype(float)
    rows, cols = np.nonzero(x)
    target = np.where(rng.random(len(rows)) < 0.5, 1.0, 0.0)
    y = np.zeros_like(x)
    y[rows, cols] = target
    f = fit_item_item(rows, cols, 10, 7, rank=7, l2=1.5, weight=1.0, max_items=100, seed=0, target=target)
    scores = f.user_vectors(rows, cols, 10) @ f.item.T
    np.testing.assert_allclose(scores, x @ _ridge_without_itself(x, y, 1.5), atol=1e-5)  # float32 factors
    # a user's side weighted per rated movie (as the fusion model serves it) is that weighted row times B
    weights = np.where(target > 0, 1.0, 0.3)
    w = np.zeros_like(x)
    w[rows, cols] = weights
    weighted = f.user_vectors(rows, cols, 10, weights) @ f.item.T
    np.testing.assert_allclose(weighted, w @ _ridge_without_itself(x, y, 1.5), atol=1e-5)


def test_ease_scores_a_movie_by_the_movies_it_is_rated_with():
    # movies 0 and 1 are always rated together, movie 2 never with them
    x = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1], [1, 1, 0]], float)
    b = EaseWeights(sparse.csr_matrix(x), l2=0.5).toarray()
    assert b[0, 1] > 0.5 and b[1, 0] > 0.5
    assert b[0, 2] == pytest.approx(0.0, abs=1e-12) and b[2, 0] == pytest.approx(0.0, abs=1e-12)


def test_truncated_svd_finds_the_top_singular_triplets():
    rng = np.random.default_rng(1)
    # a matrix with a clear spectrum: 5 strong directions and small noise
    m = rng.standard_normal((40, 5)) @ np.diag([9, 7, 5, 3, 2]) @ rng.standard_normal((5, 30)) + 0.01 * rng.standard_normal((40, 30))
    u, s, v = truncated_svd(m, 5, seed=0)
    np.testing.assert_allclose(s, np.linalg.svd(m, compute_uv=False)[:5], rtol=1e-8)
    best = np.linalg.svd(m)
    np.testing.assert_allclose(u * s @ v.T, best[0][:, :5] * best[1][:5] @ best[2][:5], atol=1e-8)


def test_full_rank_factors_reproduce_ease_scores_and_leave_unrated_movies_out():
    rng = np.random.default_rng(2)
    n_users, n_items = 12, 9
    x = (rng.random((n_users, n_items)) < 0.5).astype(float)
    x[:, 4] = 0  # nobody rated movie 4
    rows, cols = np.nonzero(x)
    f = fit_item_item(rows, cols, n_users, n_items, rank=10, l2=3.0, weight=2.0, max_items=100, seed=0)
    assert f.history.shape == f.item.shape == (n_items, 10)  # zero-padded to the configured width
    kept = [c for c in range(n_items) if c != 4]
    expected = np.zeros((n_users, n_items))
    expected[:, kept] = 2.0 * x[:, kept] @ _ease_by_definition(x[:, kept], 3.0)
    np.testing.assert_allclose(f.user_vectors(rows, cols, n_users) @ f.item.T, expected, atol=1e-4)
    assert not f.item[4].any() and not f.history[4].any()


def test_the_dense_solve_keeps_only_the_most_rated_movies():
    # movie k is rated by k + 1 users
    n_users, n_items = 8, 6
    x = np.array([[u <= k for k in range(n_items)] for u in range(n_users)], float)
    rows, cols = np.nonzero(x)
    f = fit_item_item(rows, cols, n_users, n_items, rank=3, l2=1.0, weight=1.0, max_items=3, seed=0)
    assert not f.item[:3].any() and not f.history[:3].any()
    assert f.item[3:].any(axis=1).all()


def test_the_dense_solve_built_a_block_of_columns_at_a_time_is_the_ridge_regression():
    from movierec.models.item_item import _dense_ease

    rng = np.random.default_rng(7)
    x = (rng.random((40, 11)) < 0.4).astype(float)
    y = x * np.where(rng.random(x.shape) < 0.5, 1.0, 0.3)
    d = 2.0 + 0.7 * x.sum(axis=0)
    b = _dense_ease(sparse.csr_matrix(x), sparse.csr_matrix(y), d, block=3)  # blocks of 3, 3, 3 and 2 columns
    np.testing.assert_allclose(b, _ridge_without_itself(x, y, 2.0, count_l2=0.7), atol=1e-10)
