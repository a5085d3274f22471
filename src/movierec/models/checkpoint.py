"""Saving a trained fusion model: the serving artifact plus the checkpoint that made it.

Layout under a model folder (``Settings.models_dir / "fusion"``)::

    current/                      the ServingArtifact the ranker loads
    checkpoints/<version>/        state.pt, checkpoint.json (config, versions, metrics), arrays.npz

The artifact's metadata names its checkpoint, so the two always match even while a newer model
is being written.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import ValidationError

from movierec.models.config import TRAINED_BEFORE_FIELDS_EXISTED, FusionConfig
from movierec.models.fusion import FusionNet
from movierec.models.item_content import ModalityScaling
from movierec.models.item_item import ItemItemFactors
from movierec.models.serving import ArtifactError, ServingArtifact
from movierec.models.training import TrainedFusion


def save_trained(trained: TrainedFusion, model_dir: Path, version: str, metadata: dict) -> ServingArtifact:
    """Write the checkpoint, then the serving artifact that points at it; returns the artifact."""
    model_dir = Path(model_dir)
    ckpt_rel = f"checkpoints/{version}"
    ckpt = model_dir / ckpt_rel
    tmp = ckpt.with_name(ckpt.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    content = trained.content
    torch.save({k: v.cpu() for k, v in trained.net.state_dict().items()}, tmp / "state.pt")
    arrays = {"user_ids": trained.user_ids, "movie_ids": trained.movie_ids, "has_id": trained.has_id,
              "history_rows": trained.history_rows, "history_cols": trained.history_cols}
    if trained.item_item is not None:
        arrays.update(item_item_history=trained.item_item.history, item_item_item=trained.item_item.item)
    for k, s in enumerate(content.scaling):
        arrays.update(s.as_arrays(f"scaling{k}_"))
    np.savez(tmp / "arrays.npz", **arrays)
    info = {
        "version": version, "config": trained.cfg.model_dump(), "modality_names": content.names,
        "input_dims": [int(s.mean.shape[0]) for s in content.scaling], "global_mean": trained.global_mean,
        "feature_provenance": content.provenance, "curves": trained.curves, "train_seconds": trained.train_seconds, **metadata,
    }
    (tmp / "checkpoint.json").write_text(json.dumps(info, indent=1, default=str))
    shutil.rmtree(ckpt, ignore_errors=True)
    os.replace(tmp, ckpt)
    artifact = trained.export(version, {**metadata, "checkpoint": ckpt_rel, "config": trained.cfg.model_dump(),
                                        "feature_provenance": content.provenance, "modality_coverage": content.coverage()})
    artifact.save(model_dir / "current")
    return artifact


@dataclass
class LoadedCheckpoint:
    net: FusionNet
    cfg: FusionConfig
    names: list[str]
    scaling: list[ModalityScaling]
    user_ids: np.ndarray
    movie_ids: np.ndarray
    history_vectors: np.ndarray | None
    info: dict
    item_item: ItemItemFactors | None = None


def load_checkpoint(folder: Path) -> LoadedCheckpoint:
    folder = Path(folder)
    if not (folder / "checkpoint.json").exists():
        raise ArtifactError(f"no checkpoint in {folder} (train a model first: `movierec model train`)")
    info = json.loads((folder / "checkpoint.json").read_text())
    try:
        cfg = FusionConfig(**{**TRAINED_BEFORE_FIELDS_EXISTED, **info["config"]})
    except ValidationError as exc:
        raise ArtifactError(f"checkpoint {folder} was written by another version of the model ({exc.error_count()} config "
                            "problems); retrain it with `movierec model train`") from None
    with np.load(folder / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    scaling = [
        ModalityScaling(arrays[f"scaling{k}_mean"], arrays[f"scaling{k}_std"], arrays.get(f"scaling{k}_components"))
        for k in range(len(info["modality_names"]))
    ]
    dims = [s.components.shape[1] if s.components is not None else s.mean.shape[0] for s in scaling]
    net = FusionNet(len(arrays["user_ids"]), len(arrays["movie_ids"]), dims, cfg)
    net.load_state_dict(torch.load(folder / "state.pt", map_location="cpu", weights_only=True))
    net.eval()
    history = net.history_vector.weight.detach().numpy() if net.history_vector is not None else None
    item_item = ItemItemFactors(arrays["item_item_history"], arrays["item_item_item"]) if "item_item_history" in arrays else None
    return LoadedCheckpoint(net, cfg, list(info["modality_names"]), scaling, arrays["user_ids"], arrays["movie_ids"], history, info,
                            item_item)
