"""Fixtures for the serving tests: the vendored ml-latest-small catalog and a real fusion model
trained for two epochs on its ratings with small synthetic modality vectors (quality is not
under test here, the serving plumbing is). Trained once per session, copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from movierec.data import load_dataset
from movierec.features.store import ModalityFeatures
from movierec.models.checkpoint import save_trained
from movierec.models.config import FusionConfig
from movierec.models.item_content import build_item_content
from movierec.models.serving import ServingArtifact
from movierec.models.training import train_fusion
from movierec.serving.catalog import MovieCatalog
from movierec.settings import Settings

TEXT_DIM = 16
POSTER_DIM = 12


@pytest.fixture(scope="session")
def catalog_dataset(tmp_path_factory):
    return load_dataset(Settings(home=tmp_path_factory.mktemp("home"), shared_dir=None))


@pytest.fixture
def catalog(catalog_dataset) -> MovieCatalog:
    return MovieCatalog.from_dataset(catalog_dataset)


@pytest.fixture(scope="session")
def trained_fusion_dir(catalog_dataset, tmp_path_factory) -> Path:
    """``<tmp>/fusion`` holding ``current`` (the artifact) and ``checkpoints/v1``."""
    torch.set_num_threads(1)
    ids = catalog_dataset.catalog.index.to_numpy(np.int64)
    rng = np.random.default_rng(0)
    n = len(ids)
    features = {
        "text": ModalityFeatures("text", ids, rng.normal(size=(n, TEXT_DIM)).astype(np.float32), np.ones(n, bool), {"encoder": "synthetic"}),
        "poster": ModalityFeatures("poster", ids, rng.normal(size=(n, POSTER_DIM)).astype(np.float32), rng.random(n) < 0.7, {"encoder": "synthetic"}),
    }
    content = build_item_content(features, ids, ["text", "poster"])
    trained = train_fusion(catalog_dataset.ratings, content, FusionConfig(epochs=2, dim=16, token_dim=8, heads=2), progress=False)
    root = tmp_path_factory.mktemp("models") / "fusion"
    save_trained(trained, root, "v1", {"data_version": "test"})
    return root


@pytest.fixture
def model_folder(trained_fusion_dir, tmp_path) -> Path:
    """A private copy of the trained model tree; returns its ``current`` artifact folder."""
    root = tmp_path / "fusion"
    shutil.copytree(trained_fusion_dir, root)
    return root / "current"


def publish_version(folder: Path, version: str, seed: int) -> ServingArtifact:
    """Publish a new version in ``folder`` (same checkpoint, perturbed vectors), atomically."""
    art = ServingArtifact.load(folder)
    rng = np.random.default_rng(seed)
    art.version = version
    art.item_vectors = art.item_vectors + rng.normal(scale=0.5, size=art.item_vectors.shape).astype(np.float32)
    art.save(folder)
    return art


@pytest.fixture
def publish():
    return publish_version


@pytest.fixture
def text_dim() -> int:
    return TEXT_DIM
