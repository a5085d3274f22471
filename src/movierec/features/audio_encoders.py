"""Audio encoders for trailer sound: librosa log-mel statistics and YAMNet embeddings.

Audio files (wav, flac, ogg, mp3) are decoded with librosa to mono at the encoder's rate. A file
that does not decode, is shorter than ``min_seconds`` or is silent is a ``BadItemError``: a
silent trailer would otherwise become a vector that looks like information. Long audio is cut
into windows, each encoded, and the windows pooled (mean); at most ``max_seconds`` are read.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

from movierec.features.encoder import Encoder, EncoderOptions, register_encoder
from movierec.features.errors import BadItemError, EncoderError
from movierec.settings import get_settings

SILENCE_RMS = 1e-4
"""Below about -80 dBFS a file holds no usable sound."""


def decode_audio(raw: bytes, sample_rate: int, *, max_seconds: float, min_seconds: float) -> np.ndarray:
    """Bytes of an audio file -> mono float32 samples at ``sample_rate``, or ``BadItemError``."""
    import librosa

    if not raw:
        raise BadItemError("empty file")
    try:
        samples, _ = librosa.load(io.BytesIO(raw), sr=sample_rate, mono=True, duration=max_seconds)
    except Exception:
        # formats soundfile cannot read from memory (some mp3s) go through a file and audioread
        samples = _decode_via_file(raw, sample_rate, max_seconds)
    samples = np.asarray(samples, dtype=np.float32)
    if not np.isfinite(samples).all():
        raise BadItemError("audio holds NaN or infinite samples")
    if len(samples) < min_seconds * sample_rate:
        raise BadItemError(f"audio is {len(samples) / sample_rate:.2f} s long, shorter than {min_seconds} s")
    if float(np.sqrt(np.mean(samples ** 2))) < SILENCE_RMS:
        raise BadItemError("audio is silent")
    return samples


def _decode_via_file(raw: bytes, sample_rate: int, max_seconds: float) -> np.ndarray:
    import librosa

    fd, name = tempfile.mkstemp(suffix=".audio")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            samples, _ = librosa.load(name, sr=sample_rate, mono=True, duration=max_seconds)
        return samples
    except Exception as exc:
        raise BadItemError(f"cannot decode audio ({exc.__class__.__name__})") from None
    finally:
        os.unlink(name)


class LogMelOptions(EncoderOptions):
    sample_rate: int = 22050
    n_mels: int = 128
    n_fft: int = 2048
    hop_length: int = 512
    max_seconds: float = 600.0
    min_seconds: float = 0.5


@register_encoder
class LogMelAudio(Encoder):
    name = "logmel"
    modality = "audio"
    version = "1"
    preprocessing = "mono at sample_rate, mel power spectrogram (n_mels bands), dB; mean and std of each band over time"
    Options = LogMelOptions

    @property
    def dim(self) -> int:
        return 2 * self.options.n_mels

    @property
    def weights(self) -> str:
        return "none (signal processing)"

    def prepare(self, raw: bytes) -> np.ndarray:
        import librosa

        o = self.options
        samples = decode_audio(raw, o.sample_rate, max_seconds=o.max_seconds, min_seconds=o.min_seconds)
        mel = librosa.feature.melspectrogram(y=samples, sr=o.sample_rate, n_fft=o.n_fft, hop_length=o.hop_length, n_mels=o.n_mels)
        log_mel = librosa.power_to_db(mel, ref=1.0, top_db=None)
        return np.concatenate([log_mel.mean(axis=1), log_mel.std(axis=1)]).astype(np.float32)

    def encode_prepared(self, items: list[np.ndarray]) -> np.ndarray:
        return np.stack(items).astype(np.float32)


class YamnetOptions(EncoderOptions):
    model_file: Path | None = None
    """yamnet.tflite; empty means ``Settings.yamnet_dir``/yamnet.tflite."""
    hop_seconds: float = 0.48
    max_windows: int = 256
    """Long audio: at most this many windows, spread evenly over the file."""
    max_seconds: float = 600.0
    min_seconds: float = 0.5


YAMNET_RATE = 16000
YAMNET_WINDOW = 15600
YAMNET_EMBEDDING = "global_average_pooling2d/Mean"


@register_encoder
class YamnetAudio(Encoder):
    name = "yamnet"
    modality = "audio"
    version = "1"
    preprocessing = "mono 16 kHz, 0.975 s windows every hop_seconds (at most max_windows), YAMNet 1024-dim embedding per window, mean over windows"
    Options = YamnetOptions

    def __init__(self, options: YamnetOptions):
        super().__init__(options)
        from ai_edge_litert.interpreter import Interpreter

        path = options.model_file
        if path is None:
            folder = get_settings().yamnet_dir
            if folder is None:
                raise EncoderError("YAMNet not configured: set MOVIEREC_YAMNET_DIR (or MOVIEREC_SHARED_DIR)")
            path = Path(folder) / "yamnet.tflite"
        if not Path(path).is_file():
            raise EncoderError(f"YAMNet model {path} not found (set MOVIEREC_YAMNET_DIR)")
        self.model_path = Path(path)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the preserve-all-tensors notice; we need that tensor
            self.interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
        self.interpreter.allocate_tensors()
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        found = [t["index"] for t in self.interpreter.get_tensor_details() if t["name"].endswith(YAMNET_EMBEDDING)]
        if not found:
            raise EncoderError(f"{path} has no {YAMNET_EMBEDDING} tensor: not the YAMNet model this encoder knows")
        self.embedding_index = found[0]

    @property
    def dim(self) -> int:
        return 1024

    @property
    def weights(self) -> str:
        return f"yamnet.tflite ({self.model_path.stat().st_size} bytes)"

    def windows(self, samples: np.ndarray) -> np.ndarray:
        if len(samples) < YAMNET_WINDOW:
            samples = np.pad(samples, (0, YAMNET_WINDOW - len(samples)))
        hop = max(1, int(self.options.hop_seconds * YAMNET_RATE))
        starts = np.arange(0, len(samples) - YAMNET_WINDOW + 1, hop)
        if len(starts) > self.options.max_windows:
            starts = starts[np.linspace(0, len(starts) - 1, self.options.max_windows).round().astype(int)]
        return np.stack([samples[s:s + YAMNET_WINDOW] for s in starts]).astype(np.float32)

    def prepare(self, raw: bytes) -> np.ndarray:
        o = self.options
        return self.windows(decode_audio(raw, YAMNET_RATE, max_seconds=o.max_seconds, min_seconds=o.min_seconds))

    def embed_window(self, window: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input_index, window[None, :])
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.embedding_index).reshape(-1).copy()

    def encode_prepared(self, items: list[np.ndarray]) -> np.ndarray:
        return np.stack([np.mean([self.embed_window(w) for w in windows], axis=0) for windows in items]).astype(np.float32)
