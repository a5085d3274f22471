"""Policy artifacts: a trained Q-network with everything needed to serve it, published atomically.

Layout under ``Settings.models_dir / "policy"``::

    <version>/policy.pt      Q-network weights
    <version>/tables.npz     the item table (ranker vectors, genres, runtime, popularity) and user vectors
    <version>/policy.json    version, experiment config, data and ranker versions, metrics, lineage
    current                  a one-line file naming the served version

A version folder is written under a temporary name and renamed; ``current`` is replaced with
``os.replace``. A reader therefore sees the old policy or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from movierec.data.errors import DataError
from movierec.rl.config import ExperimentConfig
from movierec.rl.dqn import DQNLearner
from movierec.rl.items import ItemTable
from movierec.rl.state import Featurizer

CURRENT_POINTER = "current"


class PolicyArtifactError(DataError):
    """A policy artifact is missing or inconsistent."""


@dataclass
class PolicyArtifact:
    version: str
    config: ExperimentConfig
    items: ItemTable
    user_ids: np.ndarray
    user_vectors: np.ndarray
    state_dict: dict
    metadata: dict = field(default_factory=dict)

    def featurizer(self) -> Featurizer:
        return Featurizer(self.items, self.config.dqn.history, self.config.simulator.max_steps, self.metadata.get("featurizer_stats"))

    def learner(self) -> DQNLearner:
        d = self.config.dqn
        learner = DQNLearner(self.featurizer(), top_n=d.top_n, hidden=d.hidden, gamma=d.gamma, lr=d.lr, tau=d.target_tau)
        learner.online.load_state_dict(self.state_dict)
        learner.target.load_state_dict(self.state_dict)
        return learner

    def user_vector(self, user_id: int) -> np.ndarray | None:
        i = int(np.searchsorted(self.user_ids, user_id))
        if i < len(self.user_ids) and self.user_ids[i] == user_id:
            return self.user_vectors[i]
        return None


def new_version(prefix: str = "dqn") -> str:
    return f"{prefix}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def save_policy(artifact: PolicyArtifact, folder: Path) -> None:
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex[:6]}")
    tmp.mkdir(parents=True)
    torch.save(artifact.state_dict, tmp / "policy.pt")
    np.savez(tmp / "tables.npz", user_ids=artifact.user_ids, user_vectors=artifact.user_vectors,
             **{f"item_{k}": v for k, v in artifact.items.arrays().items()})
    meta = {"version": artifact.version, "config": artifact.config.model_dump(), "metadata": artifact.metadata}
    (tmp / "policy.json").write_text(json.dumps(meta, indent=1, default=str))
    if folder.exists():
        shutil.rmtree(tmp)
        raise PolicyArtifactError(f"policy version {folder.name} already exists")
    os.replace(tmp, folder)


def load_policy(folder: Path) -> PolicyArtifact:
    folder = Path(folder)
    if not (folder / "policy.json").exists():
        raise PolicyArtifactError(f"no policy in {folder} (train one: `movierec rl train`)")
    meta = json.loads((folder / "policy.json").read_text())
    with np.load(folder / "tables.npz") as z:
        arrays = {k: z[k] for k in z.files}
    items = ItemTable(**{k.removeprefix("item_"): v for k, v in arrays.items() if k.startswith("item_")})
    state_dict = torch.load(folder / "policy.pt", map_location="cpu", weights_only=True)
    # saved before the softmax exploration existed: it was served, and keeps being served, epsilon-greedy
    meta["config"].setdefault("dqn", {}).setdefault("serving_temperature", 0.0)
    return PolicyArtifact(meta["version"], ExperimentConfig.model_validate(meta["config"]), items,
                          arrays["user_ids"], arrays["user_vectors"], state_dict, meta.get("metadata", {}))


def current_version(policy_dir: Path) -> str | None:
    """The published version, or None when nothing is published."""
    try:
        text = (Path(policy_dir) / CURRENT_POINTER).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return text or None


def load_current(policy_dir: Path) -> PolicyArtifact | None:
    version = current_version(policy_dir)
    return None if version is None else load_policy(Path(policy_dir) / version)


def publish_policy(artifact: PolicyArtifact, policy_dir: Path) -> Path:
    """Save the version folder, then point ``current`` at it atomically."""
    policy_dir = Path(policy_dir)
    policy_dir.mkdir(parents=True, exist_ok=True)
    folder = policy_dir / artifact.version
    save_policy(artifact, folder)
    _point_current(policy_dir, artifact.version)
    return folder


def use_version(policy_dir: Path, version: str) -> PolicyArtifact:
    """Serve an already published ``version`` again (a rollback): it is loaded first, so a
    missing or broken version never becomes ``current``. Raises ``FileNotFoundError`` or the
    loader's error."""
    policy_dir = Path(policy_dir)
    if not version or Path(version).name != version or not (policy_dir / version).is_dir():
        known = sorted(p.name for p in policy_dir.glob("*") if p.is_dir() and not p.name.startswith("."))
        raise FileNotFoundError(f"no published policy version {version!r} in {policy_dir}; published: {', '.join(known) or 'none'}")
    artifact = load_policy(policy_dir / version)
    _point_current(policy_dir, version)
    return artifact


def _point_current(policy_dir: Path, version: str) -> None:
    tmp = policy_dir / f".{CURRENT_POINTER}.tmp-{uuid.uuid4().hex[:6]}"
    tmp.write_text(version + "\n")
    os.replace(tmp, policy_dir / CURRENT_POINTER)


def artifact_from_learner(learner: DQNLearner, config: ExperimentConfig, items: ItemTable, user_ids, user_vectors,
                          metadata: dict, version: str | None = None) -> PolicyArtifact:
    state = {k: v.detach().clone() for k, v in learner.online.state_dict().items()}
    meta = {"created_at": datetime.now(timezone.utc).isoformat(), "featurizer_stats": learner.f.stats, **metadata}
    return PolicyArtifact(version or new_version(), config, items, np.asarray(user_ids, np.int64),
                          np.asarray(user_vectors, np.float32), state, meta)
