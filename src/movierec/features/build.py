"""Incremental, batched, resumable extraction of one modality into the feature store.

A movie is recomputed only when its source hash (text or file bytes) or the encoder's config
hash changed. Progress is checkpointed to ``<modality>/checkpoint.npz`` every few batches, so a
build killed half-way resumes where it stopped. A bad item (corrupt poster, silent audio, empty
text) is skipped and recorded with its reason, and stays masked: never a zero vector counted as
present. Movies the service added that are not in the catalog are kept.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from movierec.features.encoder import Encoder
from movierec.features.errors import BadItemError
from movierec.features.sources import Source, read_source, source_hash
from movierec.features.store import FeatureStore, FeatureStoreError, ModalityFeatures


@dataclass
class ModalityBuildReport:
    modality: str
    encoder: str
    config_hash: str
    dim: int
    movies_with_source: int = 0
    computed: int = 0
    reused: int = 0
    resumed: int = 0
    present: int = 0
    skipped: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def items_per_second(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict:
        out = asdict(self)
        out["skipped"] = {str(k): v for k, v in self.skipped.items()}
        out["items_per_second"] = round(self.items_per_second, 2)
        return out


@dataclass
class _Rows:
    """Vectors computed or kept so far, by movie id."""

    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    hashes: dict[int, str] = field(default_factory=dict)
    skipped: dict[int, dict] = field(default_factory=dict)


def _checkpoint_paths(store: FeatureStore, modality: str) -> tuple[Path, Path]:
    folder = store.modality_dir(modality)
    return folder / "checkpoint.npz", folder / "checkpoint.json"


def _save_checkpoint(store: FeatureStore, modality: str, config_hash: str, rows: _Rows, dim: int) -> None:
    npz, meta = _checkpoint_paths(store, modality)
    npz.parent.mkdir(parents=True, exist_ok=True)
    ids = np.array(sorted(rows.vectors), dtype=np.int64)
    matrix = np.stack([rows.vectors[i] for i in ids]) if len(ids) else np.zeros((0, dim), np.float32)
    tmp = npz.with_suffix(".tmp.npz")
    np.savez(tmp, movie_ids=ids, matrix=matrix)
    tmp_meta = meta.with_suffix(".tmp.json")
    tmp_meta.write_text(json.dumps({"config_hash": config_hash, "hashes": {str(k): v for k, v in rows.hashes.items()},
                                    "skipped": {str(k): v for k, v in rows.skipped.items()}}))
    os.replace(tmp, npz)
    os.replace(tmp_meta, meta)


def _load_checkpoint(store: FeatureStore, modality: str, config_hash: str) -> _Rows:
    npz, meta = _checkpoint_paths(store, modality)
    rows = _Rows()
    if not (npz.exists() and meta.exists()):
        return rows
    info = json.loads(meta.read_text())
    if info.get("config_hash") != config_hash:
        return rows
    with np.load(npz) as z:
        for movie_id, vector in zip(z["movie_ids"], z["matrix"]):
            rows.vectors[int(movie_id)] = vector
            rows.hashes[int(movie_id)] = info["hashes"][str(int(movie_id))]
    rows.skipped = {int(k): v for k, v in info.get("skipped", {}).items()}
    return rows


def _existing(store: FeatureStore, modality: str, config_hash: str) -> ModalityFeatures | None:
    try:
        current = store.load(modality)
    except FeatureStoreError:
        return None
    return current if current.provenance.get("config_hash") == config_hash else None


def build_modality(
    store: FeatureStore,
    modality: str,
    encoder: Encoder,
    sources: dict[int, Source],
    *,
    catalog_ids: np.ndarray,
    batch_size: int = 64,
    checkpoint_batches: int = 10,
    dataset_version: str = "",
    priority: list[int] | None = None,
    progress: bool = True,
) -> ModalityBuildReport:
    """Fill ``modality`` for every movie of ``catalog_ids``; only new or changed sources are encoded.

    ``priority`` (movie ids, most wanted first, e.g. by number of ratings) orders the work for
    file sources; each checkpoint also publishes the rows so far (provenance ``complete``: false),
    so consumers can use a long build before it ends.
    """
    start = time.perf_counter()
    config_hash = encoder.config_hash()
    report = ModalityBuildReport(modality, encoder.name, config_hash, encoder.dim, movies_with_source=len(sources))
    rows = _Rows()

    # what the store and an interrupted build already hold, for sources that did not change
    wanted: dict[int, str] = {}
    for movie_id, src in tqdm(sources.items(), desc=f"{modality}: hashing sources", unit="item", disable=not progress or encoder.source_kind == "text", leave=False):
        try:
            wanted[movie_id] = source_hash(read_source(src))
        except BadItemError as exc:
            rows.skipped[movie_id] = {"hash": "", "reason": exc.reason}
    existing = _existing(store, modality, config_hash)
    if existing is not None:
        old_hashes = existing.provenance.get("source_hashes", {})
        old_skipped = existing.provenance.get("skipped", {})
        for movie_id, vector, present in zip(existing.movie_ids, existing.matrix, existing.mask):
            m = int(movie_id)
            if present and m in wanted and old_hashes.get(str(m)) == wanted[m]:
                rows.vectors[m], rows.hashes[m] = vector, wanted[m]
                if existing.provenance.get("complete", True):
                    report.reused += 1
                else:  # published by a build that stopped before the end
                    report.resumed += 1
        for key, info in old_skipped.items():
            m = int(key)
            if m in wanted and m not in rows.vectors and info.get("hash") == wanted[m]:
                rows.skipped[m] = info
    resumed = _load_checkpoint(store, modality, config_hash)
    for m, vector in resumed.vectors.items():
        if m in wanted and m not in rows.vectors and resumed.hashes[m] == wanted[m]:
            rows.vectors[m], rows.hashes[m] = vector, wanted[m]
            report.resumed += 1
    for m, info in resumed.skipped.items():
        if m in wanted and m not in rows.vectors and info.get("hash") == wanted[m]:
            rows.skipped[m] = info

    todo = [m for m in wanted if m not in rows.vectors and m not in rows.skipped]
    if encoder.source_kind == "text":
        # batches of similar length pad little: several times faster on catalogs of short titles
        todo.sort(key=lambda m: len(sources[m]))
    elif priority is not None:
        rank = {int(m): i for i, m in enumerate(priority)}
        todo.sort(key=lambda m: rank.get(m, len(rank)))
    publish_partial = existing is not None or not (store.modality_dir(modality) / "features.npz").exists()
    bar = tqdm(total=len(todo), desc=f"{modality} ({encoder.name})", unit="item", disable=not progress, smoothing=0.1)
    batches_since_checkpoint = 0
    for begin in range(0, len(todo), batch_size):
        batch_ids, prepared, batch_hashes = [], [], []
        for m in todo[begin:begin + batch_size]:
            try:
                raw = read_source(sources[m])
                h = source_hash(raw)
                prepared.append(encoder.prepare(raw))
            except BadItemError as exc:
                rows.skipped[m] = {"hash": wanted[m], "reason": exc.reason}
                continue
            batch_ids.append(m)
            batch_hashes.append(h)
        if prepared:
            matrix = np.asarray(encoder.encode_prepared(prepared), dtype=np.float32)
            for m, h, vector in zip(batch_ids, batch_hashes, matrix):
                if not np.isfinite(vector).all() or not np.abs(vector).sum() > 0:
                    rows.skipped[m] = {"hash": h, "reason": "encoder produced an empty or non-finite vector"}
                    continue
                rows.vectors[m], rows.hashes[m] = vector, h
                report.computed += 1
        bar.update(len(todo[begin:begin + batch_size]))
        batches_since_checkpoint += 1
        if batches_since_checkpoint >= checkpoint_batches:
            _save_checkpoint(store, modality, config_hash, rows, encoder.dim)
            if publish_partial:  # never replace a complete store of another encoder by a partial one
                _publish(store, modality, encoder, rows, wanted, catalog_ids, dataset_version, pending=len(todo) - begin - batch_size)
            batches_since_checkpoint = 0
    bar.close()

    mask = _publish(store, modality, encoder, rows, wanted, catalog_ids, dataset_version, pending=0)
    for path in _checkpoint_paths(store, modality):
        path.unlink(missing_ok=True)
    report.present = int(mask.sum())
    report.skipped = {m: info["reason"] for m, info in sorted(rows.skipped.items())}
    report.seconds = time.perf_counter() - start
    return report


def _publish(store: FeatureStore, modality: str, encoder: Encoder, rows: _Rows, wanted: dict[int, str],
             catalog_ids: np.ndarray, dataset_version: str, pending: int) -> np.ndarray:
    """Save the rows so far as the modality (``pending`` > 0: a partial build); returns the mask."""
    config_hash = encoder.config_hash()
    with store.writing():
        # movies the service added meanwhile (not in this catalog) are kept, if encoded alike
        latest = _existing(store, modality, config_hash)
        if latest is not None:
            for movie_id, vector, present in zip(latest.movie_ids, latest.matrix, latest.mask):
                m = int(movie_id)
                if present and m not in wanted and m not in rows.skipped:
                    rows.vectors[m] = vector
                    rows.hashes[m] = latest.provenance.get("source_hashes", {}).get(str(m), "")
        ids = np.union1d(np.asarray(catalog_ids, np.int64), np.array(sorted(rows.vectors), dtype=np.int64))
        matrix = np.zeros((len(ids), encoder.dim), np.float32)
        mask = np.zeros(len(ids), bool)
        for i, m in enumerate(ids):
            vector = rows.vectors.get(int(m))
            if vector is not None:
                matrix[i], mask[i] = vector, True
        provenance = {
            **encoder.describe(), "config_hash": config_hash, "dataset_version": dataset_version,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source_hashes": {str(k): v for k, v in sorted(rows.hashes.items())},
            "skipped": {str(k): v for k, v in sorted(rows.skipped.items())},
            "complete": pending <= 0, "pending": max(0, pending),
        }
        store.save(ModalityFeatures(modality, ids, matrix, mask, provenance))
    return mask
