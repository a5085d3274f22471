"""The feature-extractor service through FastAPI's TestClient, with the real encoders."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import shared_path
from tests.features.conftest import tone, wav_bytes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(tmp_path_factory, text_encoder, poster_encoder, yamnet_encoder):
    from movierec_feature_extractor.app import create_app
    from movierec_feature_extractor.settings import ServiceSettings

    settings = ServiceSettings(store_dir=tmp_path_factory.mktemp("store"), max_upload_bytes=200_000)
    app = create_app(settings, encoders={"text": text_encoder, "poster": poster_encoder, "audio": yamnet_encoder})
    with TestClient(app) as c:
        yield c


def poster() -> bytes:
    return (shared_path("data/posters") / "1.jpg").read_bytes()


FIELDS = {"title": "Toy Story (1995)", "genres": "Adventure|Animation|Children", "tags": "pixar, fun", "plot": "Toys come to life."}


def test_ready_and_metrics(client):
    assert client.get("/readyz").json()["status"] == "ready"
    assert client.get("/healthz").status_code == 200


def test_post_computes_stores_and_get_reads_back(client, text_encoder):
    audio = wav_bytes(tone(440, seconds=3.0), sample_rate=16000)
    response = client.post("/v1/movies/900001/features", data=FIELDS,
                           files={"poster": ("p.jpg", poster(), "image/jpeg"), "audio": ("a.wav", audio, "audio/wav")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["movie_id"] == 900001
    assert {k: v["dim"] for k, v in body["modalities"].items()} == {"text": 384, "poster": 1280, "audio": 1024}
    assert set(body["skipped"]) == {"trailer_ivector", "trailer_avf"}
    expected = text_encoder.encode(["Toy Story (1995). Genres: Adventure, Animation, Children. Tags: pixar, fun. Toys come to life."])[0]
    np.testing.assert_allclose(body["modalities"]["text"]["vector"], expected, atol=1e-5)

    stored = client.get("/v1/movies/900001/features")
    assert stored.status_code == 200
    for name in ("text", "poster", "audio"):
        np.testing.assert_allclose(stored.json()["modalities"][name]["vector"], body["modalities"][name]["vector"], atol=1e-6)
    metrics = client.get("/metrics").text
    assert 'features_extracted_total{modality="poster"} 1.0' in metrics


def test_text_only_movie_says_what_was_skipped(client):
    response = client.post("/v1/movies/900002/features", data={"title": "A quiet film", "year": "2031"})
    assert response.status_code == 200
    body = response.json()
    assert list(body["modalities"]) == ["text"]
    assert body["skipped"]["poster"] == "no poster uploaded" and body["skipped"]["audio"] == "no audio uploaded"


@pytest.mark.parametrize("files, data, status, needle", [
    ({"poster": ("p.jpg", b"GIF89a broken", "image/gif")}, FIELDS, 422, "poster: not a readable image"),
    ({"poster": ("p.jpg", b"\xff\xd8\xff" * 10, "image/jpeg")}, FIELDS, 422, "poster:"),
    ({"audio": ("a.wav", b"RIFF nonsense", "audio/wav")}, FIELDS, 422, "audio: cannot decode audio"),
    ({"audio": ("a.wav", None, "audio/wav")}, FIELDS, 422, "audio: audio is silent"),
    ({}, {**FIELDS, "title": "   "}, 422, "title: empty"),
    ({"poster": ("big.jpg", b"x" * 200_001, "image/jpeg")}, FIELDS, 413, "poster: upload is larger"),
    ({"audio": ("a.wav", b"", "audio/wav")}, FIELDS, 422, "audio: the uploaded file is empty"),
    ({}, {**FIELDS, "year": "eleven"}, 422, "year"),
])
def test_bad_input_is_a_4xx_naming_the_field(client, files, data, status, needle):
    files = {k: (n, wav_bytes(np.zeros(16000, np.float32)) if b is None else b, t) for k, (n, b, t) in files.items()}
    response = client.post("/v1/movies/900003/features", data=data, files=files or None)
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]["message"]
    assert response.headers["x-request-id"] == response.json()["error"]["request_id"]
    # nothing was stored for a refused request
    assert client.get("/v1/movies/900003/features").status_code == 404


def test_bad_movie_ids(client):
    assert client.post("/v1/movies/0/features", data=FIELDS).status_code == 422
    missing = client.get("/v1/movies/123456789/features")
    assert missing.status_code == 404 and "movie_id" in missing.json()["error"]["message"]


def test_not_ready_until_encoders_load(tmp_path):
    from movierec_feature_extractor.app import create_app
    from movierec_feature_extractor.settings import ServiceSettings

    settings = ServiceSettings(store_dir=tmp_path, modalities=["audio"], audio_options={"model_file": str(tmp_path / "none.tflite")})
    with TestClient(create_app(settings)) as c:
        c.app.state.encoders.wait(30)
        ready = c.get("/readyz")
        assert ready.status_code == 503 and "none.tflite" in " ".join(ready.json()["problems"])
        refused = c.post("/v1/movies/5/features", data=FIELDS)
        assert refused.status_code == 503 and "none.tflite" in refused.json()["error"]["message"]


def test_service_settings_reject_unknown_modality():
    from pydantic import ValidationError

    from movierec_feature_extractor.settings import ServiceSettings

    with pytest.raises(ValidationError, match="smell"):
        ServiceSettings(modalities=["text", "smell"])
