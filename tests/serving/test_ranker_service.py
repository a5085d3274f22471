"""The ranker over HTTP: top-N, 404/422/503 answers, adding a movie, reloading a new version
(by request and by watching the folder), and a broken publish that must not take it down."""

from __future__ import annotations

import shutil
import time

import pytest
from fastapi.testclient import TestClient

from movierec.serving.catalog import MovieCatalog
from movierec_ranker.app import create_app
from movierec_ranker.settings import RankerSettings


def settings_for(folder, tmp_path, reload_interval_s: float = 0) -> RankerSettings:
    return RankerSettings(artifact_dir=folder, device="cpu", reload_interval_s=reload_interval_s, added_items_file=tmp_path / "added.jsonl")


@pytest.fixture
def client(catalog, model_folder, tmp_path):
    app = create_app(settings_for(model_folder, tmp_path), catalog=catalog)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_top_n_and_errors(client, served_dim):
    assert client.get("/readyz").status_code == 200
    body = client.post("/v1/topn", json={"user_id": 1, "k": 7, "filters": {"genres_include": ["Drama"]}}).json()
    assert body["model_version"] == "v1" and len(body["items"]) == 7
    assert all(i["because"] and i["attention"] for i in body["items"])
    cases = [
        ({"user_id": 999999}, 404, "user 999999"),
        ({"liked_movie_ids": [424242]}, 404, "424242"),
        ({"user_id": 1, "filters": {"genres_exclude": ["Cartoons"]}}, 422, "filters.genres_exclude"),
        ({"user_vector": [1.0, 2.0]}, 422, "user_vector"),
        ({"user_id": 1, "k": 0}, 422, "k"),
        ({"k": 3}, 422, "liked_movie_ids"),
    ]
    for request, status, named in cases:
        response = client.post("/v1/topn", json=request)
        assert response.status_code == status and named in response.json()["error"]["message"], (request, response.text)
    info = client.get("/v1/info").json()
    assert info["model_version"] == "v1" and info["device"] == "cpu" and info["items"] == 9742 and info["dim"] == served_dim


def test_add_item_over_http(client, text_dim, tmp_path):
    added = client.post("/v1/items", json={"movie_id": 600001, "title": "Fresh (2026)", "year": 2026, "genres": ["Drama"], "features": {"text": [0.3] * text_dim}})
    assert added.status_code == 200, added.text
    assert client.get("/v1/info").json()["added_movie_ids"] == [600001]
    listed = client.post("/v1/topn", json={"user_id": 1, "k": 5, "filters": {"year_min": 2026}}).json()
    assert [i["movie_id"] for i in listed["items"]] == [600001]
    bad = client.post("/v1/items", json={"movie_id": 600002, "title": "x", "features": {"text": [0.3] * 3}})
    assert bad.status_code == 422 and "features.text" in bad.json()["error"]["message"]
    assert "movierec_ranker_added_items_total 1.0" in client.get("/metrics").text


def test_added_movies_survive_a_restart(client, catalog_dataset, model_folder, tmp_path, text_dim):
    assert client.post("/v1/items", json={"movie_id": 600003, "title": "Kept (2027)", "year": 2027, "genres": ["War"], "features": {"text": [0.1] * text_dim}}).status_code == 200
    with (tmp_path / "added.jsonl").open("a") as fh:
        fh.write('{"movie_id": 600004, "title": "torn')  # a crash mid-write leaves a torn last line
    restarted = create_app(settings_for(model_folder, tmp_path), catalog=MovieCatalog.from_dataset(catalog_dataset))
    with TestClient(restarted) as again:
        assert again.get("/v1/info").json()["added_movie_ids"] == [600003]
        listed = again.post("/v1/topn", json={"user_id": 1, "k": 3, "filters": {"year_min": 2027, "genres_include": ["War"]}}).json()
        assert [i["movie_id"] for i in listed["items"]] == [600003]


def test_reload_swaps_version_and_survives_a_broken_publish(client, model_folder, publish):
    publish(model_folder, "v2", seed=5)
    assert client.post("/v1/reload").json()["model_version"] == "v2"
    assert client.post("/v1/topn", json={"user_id": 3, "k": 2}).json()["model_version"] == "v2"
    assert 'movierec_ranker_model_info{version="v2"} 1.0' in client.get("/metrics").text
    # a half-written or broken publish: the served version stays
    (model_folder / "artifact.npz").write_bytes(b"not an npz")
    publish_json = (model_folder / "artifact.json").read_text().replace('"v2"', '"v3"')
    (model_folder / "artifact.json").write_text(publish_json)
    client.post("/v1/reload")
    assert client.post("/v1/topn", json={"user_id": 3, "k": 2}).json()["model_version"] == "v2"
    assert client.get("/readyz").status_code == 200


def test_watches_the_folder_and_starts_without_a_model(catalog, model_folder, publish, tmp_path):
    empty = tmp_path / "nothing-yet" / "current"
    app = create_app(settings_for(empty, tmp_path, reload_interval_s=0.2), catalog=catalog)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/readyz").status_code == 503
        waiting = c.post("/v1/topn", json={"user_id": 1})
        assert waiting.status_code == 503 and waiting.json()["error"]["code"] == "model_unavailable"
        shutil.copytree(model_folder.parent, empty.parent, dirs_exist_ok=True)  # a model is published
        deadline = time.monotonic() + 20
        while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.post("/v1/topn", json={"user_id": 1, "k": 3}).json()["model_version"] == "v1"
        publish(empty, "v2", seed=9)
        deadline = time.monotonic() + 20
        while c.get("/v1/info").json()["model_version"] != "v2" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.get("/v1/info").json()["model_version"] == "v2"
