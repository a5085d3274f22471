"""Fixtures for the load tests: a small real fusion model and the stack on this machine's
PostgreSQL (a scratch database) and Redis (a DB number of its own).

The model is trained for one epoch on ml-latest-small ratings with synthetic modality vectors:
the load tests check the serving plumbing under load, not recommendation quality.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import redis
import torch

from movierec.benchmarks.scratch import scratch_database
from movierec.benchmarks.serving import ServingBenchConfig, stack_services, start_stack
from movierec.settings import Settings

POSTGRES_URL = os.environ.get("MOVIEREC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_SERVER = os.environ.get("MOVIEREC_TEST_REDIS_URL", "redis://127.0.0.1:6379")
LOAD_TEST_REDIS_DB = 12  # a DB number no other test uses


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory) -> Path:
    from movierec.data import load_dataset
    from movierec.features.store import ModalityFeatures
    from movierec.models.checkpoint import save_trained
    from movierec.models.config import FusionConfig
    from movierec.models.item_content import build_item_content
    from movierec.models.training import train_fusion

    torch.set_num_threads(1)
    ds = load_dataset(Settings(home=tmp_path_factory.mktemp("home"), shared_dir=None))
    ids = ds.catalog.index.to_numpy(np.int64)
    rng = np.random.default_rng(0)
    text = ModalityFeatures("text", ids, rng.normal(size=(len(ids), 16)).astype(np.float32), np.ones(len(ids), bool), {"encoder": "synthetic"})
    trained = train_fusion(ds.ratings, build_item_content({"text": text}, ids, ["text"]),
                           # three epochs: after one, the ranking head still serves barely-rated movies the
                           # simulated users do not know, and the smoke run would send no feedback
                           FusionConfig(epochs=3, content_epochs=2, dim=16, rank_dim=16, token_dim=8, heads=2), progress=False)
    root = tmp_path_factory.mktemp("models") / "fusion"
    save_trained(trained, root, "load-test-v1", {"data_version": ds.version})
    return root / "current"


@pytest.fixture(scope="session")
def running_stack(small_model_dir, tmp_path_factory):
    """gateway, ranker, feedback (and policy when installed) on loopback; yields the LocalStack."""
    redis_url = f"{REDIS_SERVER}/{LOAD_TEST_REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    settings = Settings(home=tmp_path_factory.mktemp("stack-home"))
    with scratch_database(POSTGRES_URL, prefix="movierec_loadtest") as database_url:
        cfg = ServingBenchConfig(database_url=database_url, redis_url=redis_url, model_dir=small_model_dir, ready_timeout_s=240)
        stack = start_stack(settings, cfg, stack_services(), say=lambda m: None)
        try:
            yield stack
        finally:
            stack.stop()
    redis.Redis.from_url(redis_url).flushdb()
