"""The service's encoders: loaded once in the background; readiness reports when they are."""

from __future__ import annotations

import threading

import numpy as np

from movierec.features.encoder import Encoder, check_vectors
from movierec.features.errors import EncoderError

from movierec_feature_extractor.settings import ServiceSettings


class EncoderPool:
    def __init__(self, settings: ServiceSettings, encoders: dict[str, Encoder] | None = None):
        self.settings = settings
        self.encoders: dict[str, Encoder] = dict(encoders or {})
        self.problem: str | None = None
        self._loaded = threading.Event()
        # torch models and the TFLite interpreter are not safe to call from two threads at once
        self._locks = {m: threading.Lock() for m in settings.modalities}
        if encoders is not None:
            self._loaded.set()

    def load_in_background(self) -> None:
        if not self._loaded.is_set():
            threading.Thread(target=self._load, name="encoder-loader", daemon=True).start()

    def _load(self) -> None:
        try:
            for modality in self.settings.modalities:
                self.encoders[modality] = self.settings.create(modality)
        except EncoderError as exc:
            self.problem = f"encoders failed to load: {exc}"
        finally:
            self._loaded.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._loaded.wait(timeout)

    async def readiness(self) -> str | None:
        if not self._loaded.is_set():
            return "encoders are loading"
        return self.problem

    def encode(self, modality: str, raw) -> np.ndarray:
        """One input -> one vector; a bad input raises ``BadItemError``."""
        encoder = self.encoders[modality]
        with self._locks.setdefault(modality, threading.Lock()):
            prepared = encoder.prepare(raw)
            return check_vectors(encoder.encode_prepared([prepared]), encoder.dim)[0]
