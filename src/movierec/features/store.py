"""The feature store: per modality a matrix, a presence mask and provenance.

Layout on disk (``Settings.features_dir``)::

    <modality>/features.npz      movie_ids (int64), matrix (float32), mask (bool)
    <modality>/provenance.json   encoder, weights version, config hash, per-movie source hashes

Rows whose mask is False are zeros and carry no information: consumers must mask them, never
treat them as present. Writes go to a temporary file and are renamed, so a reader never sees a
half-written modality.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from movierec.data.errors import DataError

MODALITIES: tuple[str, ...] = ("text", "poster", "audio", "trailer_ivector", "trailer_avf")
"""Every modality the system knows, in the order models see them."""


class FeatureStoreError(DataError):
    """The store is missing, incomplete or inconsistent."""


@dataclass
class ModalityFeatures:
    name: str
    movie_ids: np.ndarray
    matrix: np.ndarray
    mask: np.ndarray
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.movie_ids = np.asarray(self.movie_ids, dtype=np.int64)
        self.matrix = np.asarray(self.matrix, dtype=np.float32)
        self.mask = np.asarray(self.mask, dtype=bool)
        n = len(self.movie_ids)
        if self.matrix.ndim != 2 or self.matrix.shape[0] != n or self.mask.shape != (n,):
            raise FeatureStoreError(
                f"modality {self.name}: {n} ids, matrix {self.matrix.shape}, mask {self.mask.shape} do not line up"
            )

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def aligned(self, movie_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Matrix and mask in the order of ``movie_ids``; unknown movies come back masked."""
        pos = {int(m): i for i, m in enumerate(self.movie_ids)}
        idx = np.array([pos.get(int(m), -1) for m in movie_ids], dtype=np.int64)
        known = idx >= 0
        matrix = np.zeros((len(movie_ids), self.dim), dtype=np.float32)
        mask = np.zeros(len(movie_ids), dtype=bool)
        matrix[known] = self.matrix[idx[known]]
        mask[known] = self.mask[idx[known]]
        return matrix, mask


class FeatureStore:
    """Reads and writes modality feature files under one folder."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def modality_dir(self, name: str) -> Path:
        return self.root / name

    def available(self) -> list[str]:
        return [m for m in MODALITIES if (self.modality_dir(m) / "features.npz").exists()] + sorted(
            p.name for p in self.root.glob("*") if p.is_dir() and p.name not in MODALITIES and (p / "features.npz").exists()
        ) if self.root.exists() else []

    def save(self, features: ModalityFeatures) -> None:
        folder = self.modality_dir(features.name)
        folder.mkdir(parents=True, exist_ok=True)
        tmp_npz = folder / "features.tmp.npz"
        np.savez(tmp_npz, movie_ids=features.movie_ids, matrix=features.matrix, mask=features.mask)
        tmp_json = folder / "provenance.tmp.json"
        tmp_json.write_text(json.dumps(features.provenance, indent=1, sort_keys=True, default=str))
        # provenance first: a reader that sees the new matrix also sees where it came from
        os.replace(tmp_json, folder / "provenance.json")
        os.replace(tmp_npz, folder / "features.npz")

    def load(self, name: str) -> ModalityFeatures:
        folder = self.modality_dir(name)
        path = folder / "features.npz"
        if not path.exists():
            raise FeatureStoreError(f"no {name} features in {self.root} (run `movierec features build`)")
        with np.load(path) as z:
            movie_ids, matrix, mask = z["movie_ids"], z["matrix"], z["mask"]
        prov_path = folder / "provenance.json"
        provenance = json.loads(prov_path.read_text()) if prov_path.exists() else {}
        return ModalityFeatures(name, movie_ids, matrix, mask, provenance)

    def load_all(self, names: list[str] | None = None) -> dict[str, ModalityFeatures]:
        return {n: self.load(n) for n in (names or self.available())}

    @contextmanager
    def writing(self):
        """Hold the store's write lock (between a build and the service adding movies)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".write.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def upsert(self, name: str, movie_id: int, vector: np.ndarray, source_hash: str, description: dict, config_hash: str) -> None:
        """Add or replace one movie's vector, keeping every other row; refuses to mix encoders."""
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        with self.writing():
            if (self.modality_dir(name) / "features.npz").exists():
                current = self.load(name)
                if current.provenance.get("config_hash") != config_hash:
                    raise FeatureStoreError(
                        f"the {name} store was built by encoder {current.provenance.get('encoder')!r} "
                        f"(config {current.provenance.get('config_hash')}), not config {config_hash}: rebuild it or use the same encoder"
                    )
            else:
                current = ModalityFeatures(name, np.zeros(0, np.int64), np.zeros((0, len(vector)), np.float32),
                                           np.zeros(0, bool), {**description, "config_hash": config_hash, "source_hashes": {}, "skipped": {}})
            ids, matrix, mask = current.movie_ids, current.matrix, current.mask
            hit = np.flatnonzero(ids == movie_id)
            if len(hit):
                matrix[hit[0]], mask[hit[0]] = vector, True
            else:
                order = np.searchsorted(ids, movie_id)
                ids = np.insert(ids, order, movie_id)
                matrix = np.insert(matrix, order, vector, axis=0)
                mask = np.insert(mask, order, True)
            prov = dict(current.provenance)
            prov.setdefault("source_hashes", {})[str(movie_id)] = source_hash
            prov.get("skipped", {}).pop(str(movie_id), None)
            self.save(ModalityFeatures(name, ids, matrix, mask, prov))
