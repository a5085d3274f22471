"""Fixtures for the serving tests: the vendored ml-latest-small catalog and a small random
serving artifact over it (the ranker serves any artifact; quality is not under test here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from movierec.data import load_dataset
from movierec.models.serving import ServingArtifact
from movierec.serving.catalog import MovieCatalog
from movierec.settings import Settings

DIM = 16
TEXT_DIM = 24
MODALITIES = ["text", "poster", "trailer_ivector"]


@pytest.fixture(scope="session")
def catalog_dataset(tmp_path_factory):
    return load_dataset(Settings(home=tmp_path_factory.mktemp("home"), shared_dir=None))


@pytest.fixture
def catalog(catalog_dataset) -> MovieCatalog:
    return MovieCatalog.from_dataset(catalog_dataset)


def random_artifact(catalog: MovieCatalog, version: str, seed: int = 0) -> ServingArtifact:
    rng = np.random.default_rng(seed)
    movie_ids = np.array(sorted(catalog.movies), dtype=np.int64)
    user_ids = np.array(sorted(catalog.user_ratings), dtype=np.int64)
    att = rng.dirichlet(np.ones(len(MODALITIES)), size=len(movie_ids)).astype(np.float32)
    return ServingArtifact(
        version=version,
        movie_ids=movie_ids,
        item_vectors=rng.normal(size=(len(movie_ids), DIM)).astype(np.float32),
        item_bias=rng.normal(scale=0.1, size=len(movie_ids)).astype(np.float32),
        user_ids=user_ids,
        user_vectors=rng.normal(size=(len(user_ids), DIM)).astype(np.float32),
        user_bias=rng.normal(scale=0.1, size=len(user_ids)).astype(np.float32),
        global_mean=3.5,
        modality_names=MODALITIES,
        modality_attention=att,
    )


@dataclass
class NewItem:
    vector: np.ndarray
    bias: float
    attention: dict[str, float]


class TinyRecommender:
    """Test double with the fusion model's API (``artifact``, ``fold_in``, ``embed_new_item``):
    fold-in averages the liked items' vectors; a new item's vector is a fixed random projection
    of its text vector. Only the ranker's plumbing is under test here."""

    def __init__(self, artifact: ServingArtifact):
        self.artifact = artifact
        self._rows = {int(m): i for i, m in enumerate(artifact.movie_ids)}
        self._proj = np.random.default_rng(7).normal(size=(TEXT_DIM, artifact.dim)).astype(np.float32)

    def fold_in(self, ratings: dict[int, float]) -> tuple[np.ndarray, float]:
        rows = [self._rows[m] for m in ratings if m in self._rows]
        if not rows:
            raise ValueError("none of these movies is known to the model")
        return self.artifact.item_vectors[rows].mean(axis=0), 0.0

    def embed_new_item(self, features: dict[str, np.ndarray]):
        if "text" not in features:
            raise KeyError("a new movie needs a text vector")
        text = np.asarray(features["text"], np.float32)
        if text.shape != (TEXT_DIM,):
            raise ValueError(f"text vector has {text.shape[0]} dims, expected {TEXT_DIM}")
        return NewItem(vector=text @ self._proj, bias=0.5, attention={"text": 1.0})


def publish(catalog: MovieCatalog, folder: Path, version: str, seed: int = 0) -> ServingArtifact:
    art = random_artifact(catalog, version, seed)
    art.save(folder)
    return art


def tiny_loader(folder: Path) -> TinyRecommender:
    return TinyRecommender(ServingArtifact.load(folder))


@pytest.fixture
def publish_artifact(catalog):
    """``publish_artifact(folder, version, seed=0)`` writes a random artifact atomically."""
    return lambda folder, version, seed=0: publish(catalog, folder, version, seed)


@pytest.fixture
def recommender_loader():
    return tiny_loader


@pytest.fixture
def text_dim() -> int:
    return TEXT_DIM
