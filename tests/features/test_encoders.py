"""Real encoders: shapes, determinism, similar inputs nearer than unrelated ones, bad inputs."""

from __future__ import annotations

import io

import numpy as np
import pytest

from movierec.features.encoder import create_encoder, known_encoders
from movierec.features.errors import BadItemError, EncoderError
from tests.conftest import shared_path
from tests.features.conftest import speech_like, tone, wav_bytes

pytestmark = pytest.mark.slow


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def poster_bytes(movie_id: int) -> bytes:
    return (shared_path("data/posters") / f"{movie_id}.jpg").read_bytes()


def test_unknown_encoder_lists_known_names():
    with pytest.raises(EncoderError) as err:
        create_encoder("resnet-9000")
    for name in ("sentence-transformer", "efficientnet-lite0", "open-clip", "yamnet", "logmel"):
        assert name in str(err.value)
    with pytest.raises(EncoderError, match="for poster"):
        create_encoder("yamnet", modality="poster")
    assert known_encoders("audio") == ["logmel", "yamnet"]


def test_unknown_option_is_an_error_naming_it():
    with pytest.raises(EncoderError, match="max_seq_lenght"):
        create_encoder("sentence-transformer", {"max_seq_lenght": 12})


def test_text_shape_determinism_and_similarity(text_encoder):
    texts = [
        "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy. Tags: pixar, fun",
        "Toy Story 2 (1999). Genres: Adventure, Animation, Children, Comedy, Fantasy. Tags: pixar, toys",
        "Saw (2004). Genres: Horror, Mystery, Thriller. Tags: gore, torture",
    ]
    first = text_encoder.encode(texts)
    assert first.shape == (3, 384) and first.dtype == np.float32
    np.testing.assert_allclose(text_encoder.encode(texts), first, atol=1e-5)
    assert cosine(first[0], first[1]) > cosine(first[0], first[2]) + 0.2
    with pytest.raises(BadItemError, match="empty text"):
        text_encoder.encode(["   \n "])


def test_text_encoder_describes_itself(text_encoder):
    d = text_encoder.describe()
    assert d["dim"] == 384 and "all-MiniLM-L6-v2" in d["weights"] and "/" not in d["weights"].split(" ")[1]
    assert len(text_encoder.config_hash()) == 16


def test_poster_shape_determinism_and_near_duplicates(poster_encoder):
    from PIL import Image

    original = poster_bytes(1)
    image = Image.open(io.BytesIO(original)).convert("RGB")
    w, h = image.size
    # the same poster, slightly cropped and re-compressed: what a re-upload looks like
    buf = io.BytesIO()
    image.crop((3, 4, w - 3, h - 4)).save(buf, format="JPEG", quality=70)
    vectors = poster_encoder.encode([original, buf.getvalue(), poster_bytes(2), poster_bytes(296)])
    assert vectors.shape == (4, 1280) and np.isfinite(vectors).all()
    np.testing.assert_allclose(poster_encoder.encode([original])[0], vectors[0], atol=1e-4)
    near = cosine(vectors[0], vectors[1])
    others = [cosine(vectors[0], vectors[2]), cosine(vectors[0], vectors[3])]
    assert near > 0.8, (near, others)
    assert near > max(others) + 0.1, (near, others)


@pytest.mark.parametrize("raw, reason", [
    (b"", "empty file"),
    (b"this is a text file, not a poster", "not a readable image"),
    (None, "corrupt image"),  # a real JPEG cut in half
])
def test_bad_posters_are_refused_with_a_reason(poster_encoder, raw, reason):
    raw = poster_bytes(1)[:2000] if raw is None else raw
    with pytest.raises(BadItemError, match=reason):
        poster_encoder.prepare(raw)


def test_open_clip_from_a_local_checkpoint(tmp_path):
    """No CLIP weights can be downloaded here: a small random architecture saved locally stands in."""
    import json

    import open_clip
    import torch

    config = {"embed_dim": 32, "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
              "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    folder = tmp_path / "tiny-clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": config, "preprocess_cfg": {}}))
    torch.manual_seed(0)
    model = open_clip.CLIP(**config)
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")

    encoder = create_encoder("open-clip", {"model": f"local-dir:{folder}", "device": "cpu"})
    vectors = encoder.encode([poster_bytes(1), poster_bytes(1)])
    assert encoder.dim == 32 and vectors.shape == (2, 32)
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # the weights in the file are the ones used: encoding with the saved model gives the same vector
    reference = model.eval().encode_image(encoder.preprocess(__import__("PIL.Image").Image.open(io.BytesIO(poster_bytes(1))).convert("RGB"))[None])
    np.testing.assert_allclose(vectors[0], torch.nn.functional.normalize(reference, dim=-1)[0].detach().numpy(), atol=1e-4)


def test_open_clip_without_weights_is_refused():
    with pytest.raises(EncoderError, match="needs weights"):
        create_encoder("open-clip", {"model": "ViT-B-32"})


def test_yamnet_shape_determinism_and_similarity(yamnet_encoder):
    clips = [wav_bytes(tone(440, seed=1)), wav_bytes(tone(466, seed=2)), wav_bytes(speech_like(seed=3))]
    vectors = yamnet_encoder.encode(clips)
    assert vectors.shape == (3, 1024) and np.isfinite(vectors).all()
    np.testing.assert_allclose(yamnet_encoder.encode(clips[:1])[0], vectors[0], atol=1e-5)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.05


def test_yamnet_windows_long_audio_and_caps_them(yamnet_encoder):
    samples = np.zeros(16000 * 60, np.float32)
    assert len(yamnet_encoder.windows(samples[:8000])) == 1  # short audio is padded to one window
    windows = yamnet_encoder.windows(samples)
    assert windows.shape[1] == 15600 and len(windows) == min(yamnet_encoder.options.max_windows, (len(samples) - 15600) // 7680 + 1)
    capped = create_encoder("yamnet", {**yamnet_encoder.options.model_dump(), "max_windows": 8})
    assert len(capped.windows(samples)) == 8


@pytest.mark.parametrize("raw, reason", [
    (b"RIFF....WAVEfmt definitely not audio", "cannot decode audio"),
    (None, "silent"),
    ("short", "shorter than"),
])
def test_bad_audio_is_refused_with_a_reason(yamnet_encoder, raw, reason):
    if raw is None:
        raw = wav_bytes(np.zeros(22050 * 2, np.float32))
    elif raw == "short":
        raw = wav_bytes(tone(440, seconds=0.1))
    with pytest.raises(BadItemError, match=reason):
        yamnet_encoder.prepare(raw)


def test_logmel_reads_flac_and_separates_tone_from_speech():
    encoder = create_encoder("logmel")
    a, b, c = (encoder.encode([wav_bytes(x, fmt="FLAC")])[0] for x in (tone(440, seed=1), tone(440, seed=5), speech_like(seed=3)))
    assert a.shape == (256,)
    assert np.linalg.norm(a - b) < np.linalg.norm(a - c)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG", "MP3"])
def test_every_trailer_audio_format_decodes(fmt):
    from movierec.features.audio_encoders import decode_audio

    samples = decode_audio(wav_bytes(tone(440, seconds=2.0), fmt=fmt), 16000, max_seconds=60, min_seconds=0.5)
    assert abs(len(samples) / 16000 - 2.0) < 0.1 and np.sqrt(np.mean(samples ** 2)) > 0.05


def test_any_hugging_face_model_folder_is_a_text_encoder(tmp_path):
    """A plain transformers model (no sentence-transformers config) loads with mean pooling."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from movierec.features.text_encoder import default_text_model

    folder = tmp_path / "tiny-bert"
    AutoTokenizer.from_pretrained(default_text_model()).save_pretrained(folder)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)).save_pretrained(folder)
    encoder = create_encoder("sentence-transformer", {"model": str(folder), "device": "cpu"})
    vectors = encoder.encode(["a film about toys", "a film about toys", "tax law"])
    assert encoder.dim == 32 and vectors.shape == (3, 32)
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    assert encoder.describe()["weights"] == str(folder)


def test_encoder_choice_and_options_come_from_the_environment(monkeypatch):
    from movierec.features.config import FeatureSettings

    monkeypatch.setenv("MOVIEREC_FEATURES_TEXT_OPTIONS", '{"model": "bert-base-uncased", "max_seq_length": 128}')
    monkeypatch.setenv("MOVIEREC_FEATURES_POSTER_ENCODER", "open-clip")
    fs = FeatureSettings()
    assert fs.encoder_spec("text") == ("sentence-transformer", {"model": "bert-base-uncased", "max_seq_length": 128, "device": "auto"})
    assert fs.encoder_spec("poster")[0] == "open-clip"
    with pytest.raises(EncoderError, match="not computed by an encoder"):
        fs.encoder_spec("trailer_avf")
