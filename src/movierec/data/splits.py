"""Deterministic, saved train/test splits that every experiment shares.

- ``random``: a seeded 90/10 split of the ratings.
- ``temporal``: per user, the latest 20% of their ratings are test.
- ``cold-item``: a seeded 10% of movies with their ratings removed from training entirely.

``cold_validation_split`` cuts a cold-item split's training part the same way again, so that
choices about unseen movies (e.g. which modalities to fuse) are made without its test movies.

A split is saved as row indices into ``Dataset.ratings`` with the dataset version; loading it
for another version of the data fails instead of silently mixing them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from movierec.data.dataset import Dataset
from movierec.data.errors import DataError

SplitKind = Literal["random", "temporal", "cold-item"]
SPLIT_KINDS: tuple[str, ...] = ("random", "temporal", "cold-item")
RANDOM_TEST_SHARE = 0.1
TEMPORAL_TEST_SHARE = 0.2
COLD_ITEM_SHARE = 0.1


@dataclass
class Split:
    kind: str
    seed: int
    train_idx: np.ndarray
    test_idx: np.ndarray
    cold_movie_ids: np.ndarray  # empty unless kind == "cold-item"
    dataset_version: str

    def train(self, dataset: Dataset) -> pd.DataFrame:
        return dataset.ratings.iloc[self.train_idx]

    def test(self, dataset: Dataset) -> pd.DataFrame:
        return dataset.ratings.iloc[self.test_idx]


def make_split(dataset: Dataset, kind: str, seed: int = 0) -> Split:
    ratings = dataset.ratings
    n = len(ratings)
    rng = np.random.default_rng(seed)
    cold = np.array([], dtype=np.int64)
    if kind == "random":
        perm = rng.permutation(n)
        n_test = int(round(n * RANDOM_TEST_SHARE))
        test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    elif kind == "temporal":
        # ratings are sorted by (user, timestamp); rank within user by position
        order = ratings.groupby("user_id").cumcount().to_numpy()
        counts = ratings.groupby("user_id")["movie_id"].transform("size").to_numpy()
        n_test_user = np.floor(counts * TEMPORAL_TEST_SHARE).astype(int)
        is_test = order >= counts - n_test_user
        test_idx, train_idx = np.flatnonzero(is_test), np.flatnonzero(~is_test)
    elif kind == "cold-item":
        cold, test_idx, train_idx = _hold_out_movies(ratings, rng)
    else:
        raise DataError(f"unknown split kind {kind!r}; known: {', '.join(SPLIT_KINDS)}")
    return Split(kind, seed, train_idx.astype(np.int64), test_idx.astype(np.int64), cold, dataset.version)


def _hold_out_movies(ratings: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded ``COLD_ITEM_SHARE`` of the rated movies; returns them, the positions of their
    rows in ``ratings`` and the positions of every other row."""
    movies = np.sort(ratings["movie_id"].unique())
    n_cold = int(round(len(movies) * COLD_ITEM_SHARE))
    cold = np.sort(rng.choice(movies, size=n_cold, replace=False))
    held = ratings["movie_id"].isin(cold).to_numpy()
    return cold, np.flatnonzero(held), np.flatnonzero(~held)


def cold_validation_split(dataset: Dataset, split: Split) -> Split:
    """Validation cold movies inside a cold-item split's training part.

    A seeded ``COLD_ITEM_SHARE`` of the training part's movies is held out with all their ratings;
    ``train_idx`` (the fit data) and ``test_idx`` (the validation ratings) are both subsets of
    ``split.train_idx``, so the split's test movies are in neither. Derived, not saved: the same
    saved split and seed always give the same cut.
    """
    if split.kind != "cold-item":
        raise DataError(f"a cold validation split is cut from a cold-item split, not {split.kind!r}")
    # a random stream of its own: the same seed must not pick the test split's movies again
    rng = np.random.default_rng([split.seed, 1])
    cold, held, kept = _hold_out_movies(split.train(dataset), rng)
    return Split("cold-item-validation", split.seed, split.train_idx[kept], split.train_idx[held], cold, split.dataset_version)


def validation_slice(n: int, share: float, seed: int) -> np.ndarray:
    """A seeded boolean mask marking about ``share`` of ``n`` rows: the validation part cut from a
    split's training part for tuning (the same seed always gives the same cut)."""
    return np.random.default_rng(seed + 1000).random(n) < share


def split_path(splits_dir: Path, dataset: Dataset, kind: str, seed: int) -> Path:
    return splits_dir / dataset.name / f"{kind}-seed{seed}.npz"


def save_split(split: Split, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp, train_idx=split.train_idx, test_idx=split.test_idx, cold_movie_ids=split.cold_movie_ids,
        meta=np.array(json.dumps({"kind": split.kind, "seed": split.seed, "dataset_version": split.dataset_version})),
    )
    tmp.replace(path)


def read_split(path: Path) -> Split:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        return Split(meta["kind"], meta["seed"], z["train_idx"], z["test_idx"], z["cold_movie_ids"], meta["dataset_version"])


def get_split(dataset: Dataset, kind: str, seed: int, splits_dir: Path) -> Split:
    """The saved split for this dataset version, created and saved on first use."""
    path = split_path(splits_dir, dataset, kind, seed)
    if path.exists():
        split = read_split(path)
        if split.dataset_version == dataset.version:
            return split
    split = make_split(dataset, kind, seed)
    save_split(split, path)
    return split
