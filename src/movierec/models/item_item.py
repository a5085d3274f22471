"""The ranking head's item-item term: a low-rank EASE model of the user's rated history.

EASE (Steck, 2019) scores a user's unseen movies by ``x_u B``, where ``x_u`` is the user's 0/1
row of rated movies and ``B`` is the ridge regression of every movie's column on all the others
(zero diagonal), in closed form (for the plain target; ``EaseWeights`` takes a weighted one, where
a disliked movie counts for less in what is predicted):

    P = (X^T X + Lambda)^-1,    B = -P / diag(P)  with diag(B) = 0

with ``Lambda = lambda I``, or, with ``count_l2`` = alpha > 0, ``lambda I + alpha diag(X^T X)``: a
movie rated n times is held back by ``lambda + alpha n``, the emphasised-dropout penalty of Steck's
EDLAE (NeurIPS 2020; alpha = p / (1 - p) for dropout rate p).

A rank-``r`` truncated SVD ``B ~ U S V^T`` turns it into one more dot product, so the ranker still
scores every movie with one matrix product: the user's part is ``x_u U S`` (a sum of rows, which is
also how a new user is folded in), the movie's part is its row of ``V``. The fusion model serves
``x_u`` weighted as the target is (a disliked movie counts for less; ``FusionConfig`` says by how
much), which validated better than the 0/1 row the weights were fitted on. A movie no one rated, or
one outside the ``max_items`` most-rated movies the dense solve is limited to, gets a zero part:
the content encoder speaks for it.

When the catalog is wider than the user base (ml-latest-small: 9.7k movies, 610 users), ``P`` comes
from the users' side by the Woodbury identity,
``P = Lambda^-1 - Lambda^-1 X^T (I + X Lambda^-1 X^T)^-1 X Lambda^-1``,
and ``B`` is only ever applied, never formed (see ``EaseWeights``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, sparse


@dataclass
class ItemItemFactors:
    history: np.ndarray
    """(items, rank): a user's part of the score is the sum of these rows over their rated movies
    (already multiplied by the term's weight)."""
    item: np.ndarray
    """(items, rank): each movie's part."""

    def user_vectors(self, rows: np.ndarray, cols: np.ndarray, n_users: int, weights: np.ndarray | None = None) -> np.ndarray:
        """Every user's part from the (user row, movie row) pairs of their rated movies, each pair's
        row scaled by its ``weights`` entry (default 1)."""
        values = np.ones(len(rows), np.float32) if weights is None else np.asarray(weights, np.float32)
        # a sparse product: gathering a row per rating first would take ratings x rank floats (26 GB at ml-25m)
        pairs = sparse.csr_matrix((values, (rows, cols)), shape=(n_users, self.history.shape[0]))
        return np.asarray(pairs @ self.history, dtype=np.float32)


class EaseWeights:
    """The EASE matrix ``B`` (items, items) of a 0/1 (users, items) matrix ``x``, as products.

    ``y`` (default ``x``): what each movie's column is regressed to, e.g. ``x`` with disliked
    movies weighted down; the history it is regressed from stays ``x``. With the zero-diagonal
    constraint, ``B = P X^T Y - P diag(mu)``, ``mu_j = (P X^T Y)_jj / P_jj``, which is the usual
    ``B = I - P diag(1 / diag P)`` when ``y`` is ``x``.

    With fewer users than movies, ``P X^T = Lambda^-1 X^T M`` turns it into
    ``B = Lambda^-1 X^T M (Y + X diag(c)) - diag(c)``,
    ``c_j = (X^T M Y)_jj / (Lambda_jj - (X^T M X)_jj)``, with ``M = (I + X Lambda^-1 X^T)^-1``:
    applying it costs a few sparse products, and ``B`` is never formed. Otherwise ``B`` is solved
    and held dense. ``l2`` and ``count_l2`` make the diagonal ``Lambda`` (see the module's text).
    """

    def __init__(self, x: sparse.csr_matrix, l2: float, y: sparse.csr_matrix | None = None, count_l2: float = 0.0):
        y = x if y is None else y
        n_users, n_items = x.shape
        self.shape = (n_items, n_items)
        self._dense = None
        d = l2 + count_l2 * np.asarray(x.multiply(x).sum(axis=0)).ravel()  # diag(Lambda)
        if n_users < n_items:
            self._x, self._y, self._inv_d = x, y, 1.0 / d
            self._m = np.linalg.inv(np.eye(n_users) + (x.multiply(self._inv_d[None, :]) @ x.T).toarray())
            g = np.asarray(x.multiply(self._m @ x).sum(axis=0)).ravel()  # diag(X^T M X)
            h = g if y is x else np.asarray(x.multiply(self._m @ y).sum(axis=0)).ravel()  # diag(X^T M Y)
            self._c = h / (d - g)
        else:
            self._dense = _dense_ease(x, y, d)

    def __matmul__(self, q: np.ndarray) -> np.ndarray:
        if self._dense is not None:
            return self._dense @ q
        cq = self._c[:, None] * q
        return self._inv_d[:, None] * (self._x.T @ (self._m @ (self._y @ q + self._x @ cq))) - cq

    def transpose_matmul(self, q: np.ndarray) -> np.ndarray:
        """``B^T @ q``."""
        if self._dense is not None:
            return self._dense.T @ q
        mxq = self._m @ (self._x @ (self._inv_d[:, None] * q))
        return self._y.T @ mxq + self._c[:, None] * (self._x.T @ mxq) - self._c[:, None] * q

    def toarray(self) -> np.ndarray:
        return self @ np.eye(self.shape[1])


def _dense_ease(x: sparse.csr_matrix, y: sparse.csr_matrix, d: np.ndarray, block: int = 1024) -> np.ndarray:
    """``B`` held dense (``EaseWeights``' formula) with at most two (items, items) float64 matrices
    alive: the Gram matrix and ``X^T Y`` are formed a block of columns at a time (whole, a sparse
    product of the most-rated movies is nearly full and takes more than its dense copy), ``P`` is
    inverted in place of the Gram matrix, and ``B`` is built a block of columns at a time."""
    n = x.shape[1]
    xt, x_cols, y_cols = x.T.tocsr(), x.tocsc(), y.tocsc()
    blocks = [np.arange(start, min(start + block, n)) for start in range(0, n, block)]
    gram = np.empty((n, n))
    for cols in blocks:
        gram[:, cols] = (xt @ x_cols[:, cols]).toarray()
    gram[np.diag_indices_from(gram)] += d
    # the Gram matrix is symmetric, so its transpose (Fortran-ordered, which LAPACK overwrites in
    # place) is itself, and so is the inverse
    p = linalg.inv(gram.T, overwrite_a=True, check_finite=False)
    del gram
    b = np.empty_like(p)
    for cols in blocks:
        part = p @ (xt @ y_cols[:, cols]).toarray()  # (P X^T Y)[:, cols]
        mu = part[cols, cols - cols[0]] / p[cols, cols]
        part -= p[:, cols] * mu[None, :]
        part[cols, cols - cols[0]] = 0.0
        b[:, cols] = part
    return b


def truncated_svd(b, rank: int, seed: int, power_iterations: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-``rank`` singular triplets of ``b`` (an array or ``EaseWeights``) by a seeded randomised
    range finder (Halko et al.)."""
    rng = np.random.default_rng(seed)
    width = min(rank + 16, *b.shape)
    bt = b.transpose_matmul if isinstance(b, EaseWeights) else b.T.__matmul__
    q, _ = np.linalg.qr(b @ rng.standard_normal((b.shape[1], width)))
    for _ in range(power_iterations):
        q, _ = np.linalg.qr(bt(q))
        q, _ = np.linalg.qr(b @ q)
    u_small, s, vt = np.linalg.svd(bt(q).T, full_matrices=False)
    k = min(rank, len(s))
    return q @ u_small[:, :k], s[:k], vt[:k].T


def fit_item_item(rows: np.ndarray, cols: np.ndarray, n_users: int, n_items: int, *, rank: int, l2: float, weight: float,
                  max_items: int, seed: int, target: np.ndarray | None = None, count_l2: float = 0.0) -> ItemItemFactors:
    """Low-rank EASE factors from training (user row, movie row) pairs, ``rank`` columns wide
    (zero-padded when fewer movies were rated). ``target``: per pair, what it counts for in the
    regression's target (default 1 each, plain EASE); the history side is always 0/1."""
    counts = np.bincount(cols, minlength=n_items)
    kept = np.flatnonzero(counts > 0)
    if len(kept) > max_items:
        kept = np.sort(kept[np.argsort(-counts[kept], kind="stable")[:max_items]])
    column = np.full(n_items, -1)
    column[kept] = np.arange(len(kept))
    use = column[cols] >= 0
    x = sparse.csr_matrix((np.ones(int(use.sum())), (rows[use], column[cols[use]])), shape=(n_users, len(kept)))
    y = None if target is None else sparse.csr_matrix((target[use], (rows[use], column[cols[use]])), shape=(n_users, len(kept)))
    history = np.zeros((n_items, rank), np.float32)
    item = np.zeros((n_items, rank), np.float32)
    if len(kept):
        u, s, v = truncated_svd(EaseWeights(x, l2, y, count_l2), rank, seed)
        history[kept, : len(s)] = u * s * weight
        item[kept, : len(s)] = v
    return ItemItemFactors(history, item)
