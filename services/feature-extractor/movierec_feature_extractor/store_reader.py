"""Reads movies' vectors from the feature store, reloading a modality only when its file changes."""

from __future__ import annotations

import threading

from movierec.features.store import FeatureStore, ModalityFeatures


class StoreReader:
    def __init__(self, store: FeatureStore):
        self.store = store
        self._cache: dict[str, tuple[float, ModalityFeatures, dict[int, int]]] = {}
        self._lock = threading.Lock()

    def modality(self, name: str) -> tuple[ModalityFeatures, dict[int, int]] | None:
        path = self.store.modality_dir(name) / "features.npz"
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        with self._lock:
            cached = self._cache.get(name)
            if cached is None or cached[0] != mtime:
                feats = self.store.load(name)
                cached = (mtime, feats, {int(m): i for i, m in enumerate(feats.movie_ids)})
                self._cache[name] = cached
            return cached[1], cached[2]

    def available(self) -> list[str]:
        return self.store.available()
