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
MODEL_CONFIG = FusionConfig(epochs=2, content_epochs=2, dim=16, rank_dim=16, item_item_rank=8, token_dim=8, heads=2)
"""The services' test model: served vectors are 16 + 8 wide."""


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
    trained = train_fusion(catalog_dataset.ratings, content, MODEL_CONFIG, progress=False)
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


@pytest.fixture
def served_dim() -> int:
    return MODEL_CONFIG.served_dim


# --- services on loopback ports ----------------------------------------------------------------

import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import psycopg  # noqa: E402
import redis  # noqa: E402
import uvicorn  # noqa: E402

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_SERVER = "redis://127.0.0.1:6379"
GATEWAY_TEST_REDIS_DB = 11  # used by no other test folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_url() -> str:
    """A loopback URL where nothing listens (a service that is down)."""
    return f"http://127.0.0.1:{free_port()}"


class ServedApp:
    """An ASGI app served by uvicorn on a loopback port in a background thread."""

    def __init__(self, app):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ServedApp":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _serving():
    started: list[ServedApp] = []

    def start(app) -> ServedApp:
        served = ServedApp(app).__enter__()
        started.append(served)
        return served

    return start, started


@pytest.fixture
def serve():
    """``serve(app)`` starts the app on a free loopback port and returns its ``ServedApp``."""
    start, started = _serving()
    yield start
    for served in reversed(started):
        served.__exit__()


@pytest.fixture(scope="module")
def serve_for_module():
    """``serve`` for servers shared by a test module."""
    start, started = _serving()
    yield start
    for served in reversed(started):
        served.__exit__()


@pytest.fixture(scope="session")
def feedback_database_url():
    """A fresh database on the machine's PostgreSQL for the feedback service, dropped after."""
    name = f"movierec_gateway_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def gateway_redis_url():
    """A Redis DB number of its own, emptied before and after the run."""
    url = f"{REDIS_SERVER}/{GATEWAY_TEST_REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()


@pytest.fixture
def redis_db(gateway_redis_url) -> redis.Redis:
    """The test Redis DB, emptied before each test."""
    client = redis.Redis.from_url(gateway_redis_url, decode_responses=True)
    client.flushdb()
    return client


@pytest.fixture
def down_url() -> str:
    """A loopback URL where nothing listens: a service that is down."""
    return closed_url()
