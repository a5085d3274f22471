"""The encoder interface and registry.

An encoder turns one kind of raw input (a text, the bytes of an image file, the bytes of an
audio file) into a fixed-length float32 vector. Each declares its name, the modality it fills,
a version (bumped when preprocessing changes), its output dimension, its weights and a sentence
describing its preprocessing; all of that goes into its ``config_hash``, so a store built with
other settings is recomputed rather than mixed. Adding an encoder is one class decorated with
``@register_encoder``.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from movierec.features.errors import EncoderError

ENCODERS: dict[str, type["Encoder"]] = {}
"""Every registered encoder class by name."""


class EncoderOptions(BaseModel):
    """Options every encoder takes; subclasses add theirs. Unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    device: str = "auto"
    """'cpu', 'cuda', or 'auto' (cuda when available) for torch encoders."""
    batch_size: int = 32


class Encoder(ABC):
    name: ClassVar[str]
    modality: ClassVar[str]
    version: ClassVar[str]
    preprocessing: ClassVar[str]
    Options: ClassVar[type[EncoderOptions]] = EncoderOptions
    source_kind: ClassVar[str] = "file"
    """'text' (input is a str) or 'file' (input is the bytes of a file)."""

    def __init__(self, options: EncoderOptions):
        self.options = options

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @property
    @abstractmethod
    def weights(self) -> str:
        """Where the weights came from and which version (a file name, a tag, a model id)."""

    @abstractmethod
    def prepare(self, raw: Any) -> Any:
        """Decode and preprocess one input; raise ``BadItemError`` when it cannot be used."""

    @abstractmethod
    def encode_prepared(self, items: list[Any]) -> np.ndarray:
        """Encode a batch of prepared inputs into a (len(items), dim) float32 matrix."""

    def encode(self, raws: list[Any]) -> np.ndarray:
        """Prepare and encode raw inputs (a bad one raises ``BadItemError``)."""
        matrix = self.encode_prepared([self.prepare(r) for r in raws]) if raws else np.zeros((0, self.dim), np.float32)
        return check_vectors(matrix, self.dim)

    def describe(self) -> dict:
        """Everything that determines the output: the store's provenance keeps it."""
        opts = self.options.model_dump(mode="json", exclude={"device", "batch_size"})
        return {"encoder": self.name, "modality": self.modality, "version": self.version, "dim": self.dim,
                "weights": self.weights, "preprocessing": self.preprocessing, "options": opts}

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()[:16]


def check_vectors(matrix: np.ndarray, dim: int) -> np.ndarray:
    """Refuse what must never be stored as present: wrong shape, NaN/inf, all-zero rows."""
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise EncoderError(f"encoder returned shape {matrix.shape}, expected (n, {dim})")
    if len(matrix) and (not np.isfinite(matrix).all() or (np.abs(matrix).sum(axis=1) == 0).any()):
        raise EncoderError("encoder returned a NaN, infinite or all-zero vector")
    return matrix


def torch_device(choice: str) -> str:
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


def register_encoder(cls: type[Encoder]) -> type[Encoder]:
    if cls.name in ENCODERS and ENCODERS[cls.name] is not cls:
        raise EncoderError(f"encoder name {cls.name!r} is registered twice")
    ENCODERS[cls.name] = cls
    return cls


def known_encoders(modality: str | None = None) -> list[str]:
    _import_builtin_encoders()
    return sorted(n for n, c in ENCODERS.items() if modality is None or c.modality == modality)


def create_encoder(name: str, options: dict | None = None, *, modality: str | None = None) -> Encoder:
    """Build (and load) a registered encoder; unknown names and bad options list what is allowed."""
    _import_builtin_encoders()
    cls = ENCODERS.get(name)
    if cls is None or (modality is not None and cls.modality != modality):
        where = f" for {modality}" if modality else ""
        raise EncoderError(f"unknown encoder {name!r}{where}; known: {', '.join(known_encoders(modality))}")
    try:
        opts = cls.Options(**(options or {}))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise EncoderError(f"bad options for encoder {name!r}: {problems}") from None
    return cls(opts)


def _import_builtin_encoders() -> None:
    # the modules register their classes on import; importing here keeps torch out of light imports
    from movierec.features import audio_encoders, poster_encoders, text_encoder  # noqa: F401
