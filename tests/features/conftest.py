"""Encoders are loaded once per test session and shared; audio is generated here."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def text_encoder():
    from movierec.features.encoder import create_encoder

    return create_encoder("sentence-transformer", {"device": "cpu"})


@pytest.fixture(scope="session")
def poster_encoder():
    from movierec.features.encoder import create_encoder

    return create_encoder("efficientnet-lite0", {"device": "cpu", "batch_size": 8})


@pytest.fixture(scope="session")
def yamnet_encoder():
    from tests.conftest import shared_path

    from movierec.features.encoder import create_encoder

    return create_encoder("yamnet", {"model_file": str(shared_path("models/yamnet/yamnet.tflite"))})


def wav_bytes(samples: np.ndarray, sample_rate: int = 22050, fmt: str = "WAV") -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(samples, np.float32), sample_rate, format=fmt)
    return buf.getvalue()


def tone(freq: float, seconds: float = 2.0, sample_rate: int = 22050, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a little noise (music-like)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(seed)
    wave = sum(np.sin(2 * np.pi * freq * k * t) / k for k in (1, 2, 3))
    return (0.3 * wave + 0.005 * rng.normal(size=len(t))).astype(np.float32)


def speech_like(seconds: float = 2.0, sample_rate: int = 22050, seed: int = 0) -> np.ndarray:
    """Noise shaped by a syllable-rate envelope with moving formant-like resonances."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.5 * t)
    voiced = np.sign(np.sin(2 * np.pi * np.cumsum(pitch) / sample_rate))
    formants = sum(np.sin(2 * np.pi * f * t) for f in (500, 1500, 2500))
    return (0.3 * envelope * (0.6 * voiced * formants / 3 + 0.1 * rng.normal(size=len(t)))).astype(np.float32)
