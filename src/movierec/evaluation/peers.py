"""Peers measured with our protocol: real libraries (Surprise, implicit, Cornac) and simple baselines.

Each ``fit_*`` takes the training ratings (user_id, movie_id, rating) and returns a fitted scorer
with ``predict`` (ratings; peers that do not predict ratings raise NotImplementedError) and
``rank_scores`` (-inf for movies the peer never saw).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from movierec.evaluation.protocol import LIKE, lookup
from movierec.features.store import ModalityFeatures

RATING_PEERS = ("global_mean", "surprise_baselineonly", "surprise_svd", "surprise_svdpp", "surprise_knnbaseline")
RANKING_PEERS = ("popularity", "implicit_als", "implicit_bpr", "cornac_bpr", "cornac_vbpr", "cornac_ease", "content_nn")
PEER_SETTINGS: dict[str, dict] = {
    "implicit_als": {"factors": 64, "regularization": 0.05, "iterations": 15},
    "implicit_bpr": {"factors": 64, "learning_rate": 0.01, "regularization": 0.01, "iterations": 100},
    # Cornac BPR at 100 iterations and learning rate 0.01 was under-trained: on a 10% validation
    # slice of the seed-0 random split's training part (never test; ad hoc, k=64, lambda 0.01)
    # Recall@20 was 0.198 there, 0.248 at 200 iterations and rate 0.05, 0.260 at 500, 0.260 at 1000
    "cornac_bpr": {"k": 64, "max_iter": 500, "learning_rate": 0.05, "lambda_reg": 0.01},
    "cornac_ease": {"lamb": 500, "posB": True},
    # Cornac VBPR at 10 epochs was under-trained. `movierec model validate-peer cornac_vbpr --set ...`
    # (seed 0, 10% validation cut; Recall@20): 10 epochs 0.187; 20 epochs 0.200; 30 epochs 0.201;
    # rate 0.01 / 0.02 / 0.05 at 10 epochs 0.177 / 0.152 / 0.118; rate 0.002 at 20 epochs 0.197;
    # k = k2 = 64 at 20 epochs 0.189; lambda_w 0.1 at 20 epochs 0.200
    "cornac_vbpr": {"k": 32, "k2": 32, "n_epochs": 20, "batch_size": 512, "learning_rate": 0.005,
                    "lambda_w": 0.01, "lambda_b": 0.01, "lambda_e": 0.0},
}
"""Hyperparameters of the library peers; part of each cached result's key, so a change reruns them.
``movierec model validate-peer NAME --set KEY=VALUE`` measures a setting on a validation cut of a
split's training part (never its test part)."""


def peer_settings(name: str, overrides: dict | None = None) -> dict:
    """``PEER_SETTINGS[name]`` with ``overrides`` (tuning) on top."""
    return {**PEER_SETTINGS.get(name, {}), **(overrides or {})}


class IdIndex:
    """Dense positions for the users and movies a peer saw in training."""

    def __init__(self, train: pd.DataFrame):
        self.user_ids = np.unique(train["user_id"].to_numpy())
        self.movie_ids = np.unique(train["movie_id"].to_numpy())
        self.u = lookup(train["user_id"].to_numpy(), self.user_ids)
        self.i = lookup(train["movie_id"].to_numpy(), self.movie_ids)

    def user_items(self) -> sp.csr_matrix:
        data = np.ones(len(self.u), np.float32)
        return sp.csr_matrix((data, (self.u, self.i)), shape=(len(self.user_ids), len(self.movie_ids)))


class FactorScorer:
    """Scores as user_factors . item_factors (+ item bias) over the peer's own id index."""

    def __init__(self, index: IdIndex, user_factors: np.ndarray, item_factors: np.ndarray, item_bias: np.ndarray | None = None):
        self.index, self.p, self.q = index, np.asarray(user_factors, np.float64), np.asarray(item_factors, np.float64)
        self.b = np.zeros(len(self.q)) if item_bias is None else np.asarray(item_bias, np.float64)

    def predict(self, user_ids, movie_ids):
        raise NotImplementedError("this peer ranks, it does not predict ratings")

    def rank_scores(self, user_ids: np.ndarray, movie_ids: np.ndarray) -> np.ndarray:
        ur = lookup(np.asarray(user_ids), self.index.user_ids)
        ir = lookup(np.asarray(movie_ids), self.index.movie_ids)
        scores = self.p[np.maximum(ur, 0)] @ self.q[np.maximum(ir, 0)].T + self.b[np.maximum(ir, 0)]
        scores[ur < 0] = 0.0
        scores[:, ir < 0] = -np.inf
        return scores


class GlobalMean:
    def __init__(self, train: pd.DataFrame):
        self.mean = float(train["rating"].mean())

    def predict(self, user_ids, movie_ids):
        return np.full(len(user_ids), self.mean)

    def rank_scores(self, user_ids, movie_ids):
        return np.zeros((len(user_ids), len(movie_ids)))


class SurpriseScorer:
    def __init__(self, algo, train: pd.DataFrame):
        from surprise import Dataset, Reader

        data = Dataset.load_from_df(train[["user_id", "movie_id", "rating"]], Reader(rating_scale=(0.5, 5.0)))
        self.algo = algo
        algo.fit(data.build_full_trainset())

    def predict(self, user_ids, movie_ids):
        return np.array([self.algo.predict(int(u), int(m)).est for u, m in zip(user_ids, movie_ids)])

    def rank_scores(self, user_ids, movie_ids):
        raise NotImplementedError("Surprise models are compared on ratings")


def fit_surprise(name: str, train: pd.DataFrame, seed: int, overrides: dict | None = None) -> SurpriseScorer:
    from surprise import SVD, BaselineOnly, KNNBaseline, SVDpp

    params = peer_settings(name, overrides)
    algos = {
        "surprise_baselineonly": lambda: BaselineOnly(verbose=False, **params),
        "surprise_svd": lambda: SVD(random_state=seed, **params),
        "surprise_svdpp": lambda: SVDpp(random_state=seed, cache_ratings=True, **params),
        "surprise_knnbaseline": lambda: KNNBaseline(sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False, **params),
    }
    return SurpriseScorer(algos[name](), train)


class Popularity:
    """Movies ranked by how many training ratings they have (no ratings predicted)."""

    def __init__(self, train: pd.DataFrame):
        counts = train["movie_id"].value_counts()
        self.movie_ids, self.counts = counts.index.to_numpy(np.int64), counts.to_numpy(np.float64)

    def predict(self, user_ids, movie_ids):
        raise NotImplementedError("popularity ranks, it does not predict ratings")

    def rank_scores(self, user_ids, movie_ids):
        rows = lookup(np.asarray(movie_ids), self.movie_ids)
        row = np.where(rows >= 0, self.counts[np.maximum(rows, 0)], 0.0)
        return np.tile(row, (len(user_ids), 1))


def fit_implicit(name: str, train: pd.DataFrame, seed: int, threads: int = 1, overrides: dict | None = None) -> FactorScorer:
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    index = IdIndex(train)
    if name == "implicit_als":
        model = AlternatingLeastSquares(**peer_settings(name, overrides), num_threads=threads, random_state=seed)
    else:
        model = BayesianPersonalizedRanking(**peer_settings(name, overrides), num_threads=threads, random_state=seed)
    model.fit(index.user_items(), show_progress=False)
    scorer = FactorScorer(index, model.user_factors, model.item_factors)
    scorer.model = model
    return scorer


class ItemItemScorer:
    """Scores as the user's training row times an item-item matrix (``row @ B``), over the peer's id index."""

    def __init__(self, index: IdIndex, user_rows: sp.csr_matrix, item_item: np.ndarray):
        self.index, self.x, self.b = index, user_rows, np.asarray(item_item, np.float64)

    def predict(self, user_ids, movie_ids):
        raise NotImplementedError("this peer ranks, it does not predict ratings")

    def rank_scores(self, user_ids: np.ndarray, movie_ids: np.ndarray) -> np.ndarray:
        ur = lookup(np.asarray(user_ids), self.index.user_ids)
        ir = lookup(np.asarray(movie_ids), self.index.movie_ids)
        scores = np.asarray(self.x[np.maximum(ur, 0)] @ self.b)[:, np.maximum(ir, 0)]
        scores[ur < 0] = 0.0
        scores[:, ir < 0] = -np.inf
        return scores


def fit_cornac(name: str, train: pd.DataFrame, seed: int, poster: tuple[np.ndarray, np.ndarray] | None = None,
               overrides: dict | None = None) -> FactorScorer | ItemItemScorer:
    """Cornac BPR, VBPR with poster vectors ``(movie_ids, matrix)`` (missing posters as zeros), or
    EASE (Steck 2019: a closed-form item-item model; Cornac's defaults, lambda 500 on the rating
    matrix, negative weights dropped)."""
    import cornac
    from cornac.data import ImageModality

    triples = list(zip(train["user_id"].astype(str), train["movie_id"].astype(str), train["rating"].astype(float)))
    train_set = cornac.data.Dataset.from_uir(triples, seed=seed)
    if name == "cornac_bpr":
        model = cornac.models.BPR(**peer_settings(name, overrides), seed=seed, num_threads=1)
    elif name == "cornac_ease":
        model = cornac.models.EASE(**peer_settings(name, overrides), verbose=False, seed=seed)
    else:
        if poster is None:
            raise ValueError("VBPR needs poster features")
        # one row per training movie in Cornac's own order; a movie without a poster gets zeros
        # (VBPR has no notion of a missing modality)
        ordered = np.array([int(m) for m in train_set.iid_map], np.int64)
        rows = lookup(ordered, np.asarray(poster[0]))
        matrix = np.zeros((len(ordered), poster[1].shape[1]), np.float32)
        matrix[rows >= 0] = poster[1][rows[rows >= 0]]
        image = ImageModality(features=matrix, ids=[str(m) for m in ordered], normalized=True)
        image.build(id_map=train_set.iid_map)
        train_set.add_modalities(item_image=image)
        model = cornac.models.VBPR(**peer_settings(name, overrides), verbose=False, seed=seed)
    model.fit(train_set)
    user_ids = np.array([int(u) for u in train_set.uid_map], np.int64)
    movie_ids = np.array([int(m) for m in train_set.iid_map], np.int64)
    uidx = np.array(list(train_set.uid_map.values()))
    iidx = np.array(list(train_set.iid_map.values()))
    index = IdIndex.__new__(IdIndex)
    index.user_ids, index.movie_ids = user_ids, movie_ids
    if name == "cornac_bpr":
        return FactorScorer(index, model.u_factors[uidx], model.i_factors[iidx], model.i_biases[iidx] if model.i_biases is not None else None)
    if name == "cornac_ease":
        return ItemItemScorer(index, model.U[uidx][:, iidx], model.B[np.ix_(iidx, iidx)])
    user = np.hstack([model.gamma_user, model.theta_user])[uidx]
    item = np.hstack([model.gamma_item, model.theta_item])[iidx]
    return FactorScorer(index, user, item, (model.beta_item + model.visual_bias)[iidx])


class ContentNearestNeighbour:
    """Scores a movie by its mean cosine similarity to the user's liked training movies (text features)."""

    def __init__(self, train: pd.DataFrame, movie_ids: np.ndarray, matrix: np.ndarray, mask: np.ndarray):
        unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-9)
        unit[~mask] = 0.0
        self.movie_ids, self.unit = np.asarray(movie_ids), unit.astype(np.float64)
        liked = train[train["rating"] >= LIKE]
        rows = lookup(liked["movie_id"].to_numpy(), self.movie_ids)
        self.profile = {}
        for u, g in pd.DataFrame({"u": liked["user_id"].to_numpy(), "r": rows}).groupby("u"):
            r = g["r"].to_numpy()
            r = r[r >= 0]
            if len(r):
                self.profile[int(u)] = self.unit[r].mean(axis=0)

    def predict(self, user_ids, movie_ids):
        raise NotImplementedError("content nearest-neighbour ranks, it does not predict ratings")

    def rank_scores(self, user_ids, movie_ids):
        rows = lookup(np.asarray(movie_ids), self.movie_ids)
        items = self.unit[np.maximum(rows, 0)]
        zero = np.zeros(self.unit.shape[1])
        profiles = np.stack([self.profile.get(int(u), zero) for u in user_ids])
        scores = profiles @ items.T
        scores[:, rows < 0] = -np.inf
        return scores


def fit_peer(name: str, train: pd.DataFrame, seed: int, features: dict[str, ModalityFeatures], overrides: dict | None = None):
    """Any peer of ``RATING_PEERS`` or ``RANKING_PEERS`` fitted on ``train``; Cornac VBPR reads the
    poster features and the content nearest-neighbour the text features of ``features``."""
    if overrides and name in ("global_mean", "popularity", "content_nn"):
        raise ValueError(f"{name} takes no settings")
    if name == "global_mean":
        return GlobalMean(train)
    if name.startswith("surprise_"):
        return fit_surprise(name, train, seed, overrides)
    if name == "popularity":
        return Popularity(train)
    if name.startswith("implicit_"):
        return fit_implicit(name, train, seed, overrides=overrides)
    if name in ("cornac_bpr", "cornac_ease"):
        return fit_cornac(name, train, seed, overrides=overrides)
    if name == "cornac_vbpr":
        poster = _needs(features, "poster", name)
        return fit_cornac(name, train, seed, poster=(poster.movie_ids[poster.mask], poster.matrix[poster.mask]), overrides=overrides)
    if name == "content_nn":
        text = _needs(features, "text", name)
        return ContentNearestNeighbour(train, text.movie_ids, text.matrix, text.mask)
    raise ValueError(f"unknown peer {name!r}; peers: {', '.join(RATING_PEERS + RANKING_PEERS)}")


def _needs(features: dict[str, ModalityFeatures], modality: str, peer: str) -> ModalityFeatures:
    if features.get(modality) is None:
        raise ValueError(f"{peer} needs {modality} features (`movierec features build -m {modality}`)")
    return features[modality]


class RandomRanker:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def predict(self, user_ids, movie_ids):
        raise NotImplementedError

    def rank_scores(self, user_ids, movie_ids):
        return self.rng.random((len(user_ids), len(movie_ids)))
