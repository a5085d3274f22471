"""Everything one simulated experiment needs, built from configuration and a ranker artifact.

``build_world`` loads the data and a split, takes the ranker (the published fusion artifact, or a
quick factorisation fitted on the split's TRAIN ratings), fits the hidden-taste oracle on ALL
ratings, and precomputes each user's ranked candidates.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from movierec.data import Dataset, load_dataset
from movierec.data.splits import get_split
from movierec.models.serving import ArtifactError, ServingArtifact
from movierec.rl.config import ExperimentConfig
from movierec.rl.factorization import fit_biased_mf, predict_rating_matrix
from movierec.rl.items import ItemTable, build_item_table
from movierec.rl.simulator import UserSimulator
from movierec.settings import Settings


@dataclass
class World:
    config: ExperimentConfig
    items: ItemTable
    simulator: UserSimulator
    user_vectors: np.ndarray  # (users, d) the ranker's vectors of the simulated users
    seen: np.ndarray  # (users, items) bool: rated in the ranker's training data, never recommended
    candidate_rows: np.ndarray  # (users, top_n + max_steps) item rows by ranker score, best first
    candidate_scores: np.ndarray
    head: np.ndarray  # (items,) bool: the most popular share of the catalog
    ranker_version: str
    dataset_version: str
    ranker: ServingArtifact | None = None
    dataset: Dataset | None = None
    train_ratings: pd.DataFrame | None = None

    @property
    def n_users(self) -> int:
        return len(self.simulator.user_ids)

    def candidates(self, user_index: int, watched: set[int]) -> tuple[np.ndarray, np.ndarray]:
        """The ranker's top-N rows for this user, skipping movies watched in this session."""
        rows, scores = self.candidate_rows[user_index], self.candidate_scores[user_index]
        keep = np.fromiter((r not in watched for r in rows), bool, len(rows)) if watched else np.ones(len(rows), bool)
        n = self.config.dqn.top_n
        return rows[keep][:n], scores[keep][:n]


def _cached_mf(cache: Path, ratings: pd.DataFrame, dim: int, seed: int, tag: str, dataset_version: str) -> ServingArtifact:
    key = hashlib.sha256(json.dumps([tag, dim, seed, dataset_version, len(ratings)]).encode()).hexdigest()[:12]
    folder = cache / f"{tag}-{key}"
    try:
        return ServingArtifact.load(folder)
    except ArtifactError:
        artifact = fit_biased_mf(ratings, dim=dim, seed=seed, version=f"{tag}-{key}")
        artifact.metadata["dataset_version"] = dataset_version
        folder.parent.mkdir(parents=True, exist_ok=True)
        artifact.save(folder)
        return artifact


def load_ranker(settings: Settings, dataset: Dataset, train: pd.DataFrame, config: ExperimentConfig, ranker_dir: Path | None,
                prefer_fusion: bool = True) -> ServingArtifact:
    """The given artifact, else the published fusion artifact (when preferred), else the train-split factorisation."""
    if ranker_dir is not None:
        return ServingArtifact.load(ranker_dir)
    fusion = settings.models_dir / "fusion" / "current"
    if prefer_fusion and (fusion / "artifact.json").exists():
        return ServingArtifact.load(fusion)
    return _cached_mf(settings.models_dir / "rl" / "cache", train, config.ranker_dim, config.split_seed, "ranker-mf", dataset.version)


MAX_SIMULATED_USERS = 10_000
"""At most this many users are simulated (ml-latest-small's 610 all are): the simulator holds each
simulated user's taste of every simulated movie, users x movies float64, which for ml-25m's 162k
users and its ~30k movies with 5 ratings or more would take 39 GB."""


def simulated_users(users: np.ndarray, seed: int, max_users: int = MAX_SIMULATED_USERS) -> np.ndarray:
    """``users`` (sorted ids), or a seeded sample of ``max_users`` of them, sorted, when there are more."""
    if len(users) <= max_users:
        return users
    return np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))


def fit_oracle(settings: Settings, ds: Dataset, config: ExperimentConfig, max_users: int = MAX_SIMULATED_USERS) -> ServingArtifact:
    """The simulator's hidden taste: biased MF on every rating of the users who can be simulated
    (``simulated_users`` of everyone who rated; all of ml-latest-small's), cached. Only their
    ratings are fitted, so a large dataset's fit costs what its sample's ratings cost (at ml-25m's
    25M ratings the full-batch fit would run for hours on a CPU)."""
    everyone = np.unique(ds.ratings["user_id"].to_numpy(np.int64))
    users = simulated_users(everyone, config.split_seed, max_users)
    ratings = ds.ratings if len(users) == len(everyone) else ds.ratings[ds.ratings["user_id"].isin(users)]
    return _cached_mf(settings.models_dir / "rl" / "cache", ratings, config.simulator.oracle_dim, 1000 + config.split_seed,
                      "oracle-mf", ds.version)


def ranked_candidates(user_vectors: np.ndarray, item_vectors: np.ndarray, item_bias: np.ndarray, seen: np.ndarray, width: int,
                      chunk_users: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Each user's ``width`` best unseen item rows by the ranker's score, best first (ties in row
    order), and their scores (float32). Scored ``chunk_users`` users at a time, so only a chunk's
    users x items scores and sort order exist at once (whole, at 10,000 users and ml-25m's ~30k
    movies, they were several GB)."""
    n = len(user_vectors)
    order = np.empty((n, width), np.int64)
    top = np.empty((n, width), np.float32)
    for start in range(0, n, chunk_users):
        end = min(start + chunk_users, n)
        scores = user_vectors[start:end] @ item_vectors.T + item_bias
        scores = np.where(seen[start:end], -np.inf, scores)
        rows = np.argsort(-scores, axis=1, kind="stable")[:, :width]
        order[start:end] = rows
        top[start:end] = np.take_along_axis(scores, rows, 1)
    return order, top


def build_world(config: ExperimentConfig, settings: Settings, *, dataset: Dataset | None = None, ranker_dir: Path | None = None,
                prefer_fusion: bool = True) -> World:
    ds = dataset or load_dataset(settings)
    split = get_split(ds, config.split_kind, config.split_seed, settings.splits_dir)
    train = split.train(ds)
    ranker = load_ranker(settings, ds, train, config, ranker_dir, prefer_fusion)
    oracle = fit_oracle(settings, ds, config)
    items = build_item_table(ds, ranker, train, min_ratings=config.min_item_ratings,
                             default_runtime=config.simulator.default_runtime_minutes, restrict_to=oracle.movie_ids)
    users = np.intersect1d(np.intersect1d(ranker.user_ids, oracle.user_ids), train["user_id"].unique())
    taste = predict_rating_matrix(oracle, users, items.movie_ids)
    user_vectors = ranker.user_vectors[np.searchsorted(ranker.user_ids, users)]
    seen = np.zeros((len(users), len(items)), bool)
    t = train[train["user_id"].isin(users)]
    rows = items.index_of(t["movie_id"].to_numpy())
    ok = rows >= 0
    seen[np.searchsorted(users, t["user_id"].to_numpy()[ok]), rows[ok]] = True
    width = min(config.dqn.top_n + config.simulator.max_steps, len(items))
    order, candidate_scores = ranked_candidates(user_vectors, items.vectors, items.bias, seen, width)
    n_head = int(round(config.long_tail_head_share * len(items)))
    head = np.zeros(len(items), bool)
    head[np.argsort(-items.popularity, kind="stable")[:n_head]] = True
    return World(
        config=config, items=items, simulator=UserSimulator(config.simulator, items, users, taste),
        user_vectors=user_vectors, seen=seen, candidate_rows=order,
        candidate_scores=candidate_scores, head=head,
        ranker_version=ranker.version, dataset_version=ds.version, ranker=ranker, dataset=ds, train_ratings=train,
    )


def serving_tables(world: World) -> tuple[ItemTable, np.ndarray, np.ndarray]:
    """Every movie and user the ranker knows (the simulator uses a subset), for a served policy."""
    items = build_item_table(world.dataset, world.ranker, world.train_ratings, min_ratings=0,
                             default_runtime=world.config.simulator.default_runtime_minutes)
    return items, world.ranker.user_ids, world.ranker.user_vectors
