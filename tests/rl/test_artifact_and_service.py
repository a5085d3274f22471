"""Atomic publishing, hot reload without dropped requests, and the policy service's answers."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from movierec.rl.artifact import PolicyArtifactError, current_version, load_current, load_policy, publish_policy, use_version
from movierec_policy.app import create_app
from movierec_policy.settings import PolicySettings


def _request(world, user_id=1, n=12, **extra):
    rows = world.candidate_rows[0][:n]
    body = {"user_id": user_id, "candidates": [{"movie_id": int(world.items.movie_ids[r]), "score": float(s)}
                                                for r, s in zip(rows, world.candidate_scores[0][:n])], "k": 5}
    body.update(extra)
    return body


def test_publish_writes_a_version_and_swaps_the_pointer(tmp_path, tiny_artifact_factory, tiny_world):
    assert current_version(tmp_path) is None and load_current(tmp_path) is None
    a = tiny_artifact_factory("v-one")
    publish_policy(a, tmp_path)
    assert current_version(tmp_path) == "v-one"
    loaded = load_policy(tmp_path / "v-one")
    assert loaded.config == tiny_world.config
    np.testing.assert_array_equal(loaded.items.movie_ids, tiny_world.items.movie_ids)
    for k, v in a.state_dict.items():
        assert np.array_equal(loaded.state_dict[k].numpy(), v.numpy())
    publish_policy(tiny_artifact_factory("v-two"), tmp_path)
    assert current_version(tmp_path) == "v-two"
    assert (tmp_path / "v-one").is_dir()  # old versions stay for rollback
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    with pytest.raises(PolicyArtifactError, match="already exists"):
        publish_policy(tiny_artifact_factory("v-two"), tmp_path)
    assert current_version(tmp_path) == "v-two"


def test_a_policy_saved_before_softmax_serving_keeps_epsilon_greedy(tmp_path, tiny_artifact_factory):
    import json

    publish_policy(tiny_artifact_factory("v-old"), tmp_path)
    assert load_policy(tmp_path / "v-old").config.dqn.serving_temperature == 1.0  # today's default, saved
    meta_path = tmp_path / "v-old" / "policy.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["dqn"]["serving_temperature"]  # as a policy published before the setting existed
    meta_path.write_text(json.dumps(meta))
    assert load_policy(tmp_path / "v-old").config.dqn.serving_exploration.temperature == 0.0


def test_rollback_serves_a_published_version_again_and_refuses_others(tmp_path, tiny_artifact_factory):
    publish_policy(tiny_artifact_factory("v-one"), tmp_path)
    publish_policy(tiny_artifact_factory("v-two"), tmp_path)
    assert use_version(tmp_path, "v-one").version == "v-one" and current_version(tmp_path) == "v-one"
    (tmp_path / "v-broken").mkdir()
    for bad in ("v-nine", "../v-one", "", "v-broken"):
        with pytest.raises((FileNotFoundError, PolicyArtifactError)):
            use_version(tmp_path, bad)
    assert current_version(tmp_path) == "v-one"  # a refused version never becomes current
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_without_a_policy_the_ranker_order_passes_through(tmp_path):
    client = TestClient(create_app(PolicySettings(policy_dir=tmp_path, reload_interval_s=0)))
    body = {"user_id": 3, "candidates": [{"movie_id": 10, "score": 0.1}, {"movie_id": 20, "score": 0.9}, {"movie_id": 30, "score": 0.5}], "k": 2}
    r = client.post("/v1/rank", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["policy_version"] == "greedy"
    assert [i["movie_id"] for i in out["items"]] == [20, 30]
    assert all(i["propensity"] == 1.0 for i in out["items"])
    assert client.get("/readyz").status_code == 200


def test_the_dqn_ranks_and_bad_input_gets_a_4xx_naming_the_field(tmp_path, tiny_artifact_factory, tiny_world):
    publish_policy(tiny_artifact_factory("v-served"), tmp_path)
    client = TestClient(create_app(PolicySettings(policy_dir=tmp_path, reload_interval_s=0, seed=0)))
    r = client.post("/v1/rank", json=_request(tiny_world, recent_movie_ids=[int(tiny_world.items.movie_ids[0])]))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["policy_version"] == "v-served"
    assert len(out["items"]) == 5 and len({i["movie_id"] for i in out["items"]}) == 5
    assert all(0 < i["propensity"] <= 1 for i in out["items"])

    cases = [
        (_request(tiny_world, candidates=[]), 422, "candidates"),
        (_request(tiny_world, candidates=[{"movie_id": 999999, "score": 1.0}]), 422, "999999"),
        (_request(tiny_world, recent_movie_ids=[888888]), 422, "recent_movie_ids"),
        (_request(tiny_world, user_id=None, user_vector=[0.1, 0.2]), 422, "dimensions"),
        (_request(tiny_world, user_id=777), 404, "user_id"),
        (_request(tiny_world, user_id=None), 422, "user_vector"),
    ]
    dup = _request(tiny_world)
    dup["candidates"] = dup["candidates"][:2] * 2
    cases.append((dup, 422, "duplicate"))
    for body, status, words in cases:
        r = client.post("/v1/rank", json=body)
        assert r.status_code == status, (body, r.text)
        assert words in r.json()["error"]["message"], r.text
    new_user = _request(tiny_world, user_id=None, user_vector=[0.1] * tiny_world.items.dim)
    assert client.post("/v1/rank", json=new_user).status_code == 200


def test_hot_reload_swaps_versions_without_dropping_requests(tmp_path, tiny_artifact_factory, tiny_world):
    publish_policy(tiny_artifact_factory("v-old"), tmp_path)
    client = TestClient(create_app(PolicySettings(policy_dir=tmp_path, reload_interval_s=0)))
    body = _request(tiny_world)
    assert client.post("/v1/rank", json=body).json()["policy_version"] == "v-old"
    seen, errors = [], []
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            r = client.post("/v1/rank", json=body)
            (seen if r.status_code == 200 else errors).append(r.json().get("policy_version", r.text))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(200):  # the hammer is under way on the old version before the new one is published
        if seen or errors:
            break
        threading.Event().wait(0.05)
    publish_policy(tiny_artifact_factory("v-new"), tmp_path)
    for _ in range(200):
        if seen and seen[-1] == "v-new":
            break
        threading.Event().wait(0.05)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    # a request that picked up the old ranker just before the swap may finish after one served
    # by the new version, so the order of ``seen`` is not checked: both versions served, none failed
    assert "v-old" in seen and "v-new" in seen
    assert client.post("/v1/rank", json=body).json()["policy_version"] == "v-new"
    assert client.get("/v1/policy").json()["version"] == "v-new"
    assert 'policy_reloads_total{outcome="loaded"} 2.0' in client.get("/metrics").text


def test_a_broken_version_keeps_the_old_policy_serving(tmp_path, tiny_artifact_factory, tiny_world):
    publish_policy(tiny_artifact_factory("v-good"), tmp_path)
    client = TestClient(create_app(PolicySettings(policy_dir=tmp_path, reload_interval_s=0)))
    body = _request(tiny_world)
    assert client.post("/v1/rank", json=body).json()["policy_version"] == "v-good"
    (tmp_path / "v-broken").mkdir()
    (tmp_path / "current").write_text("v-broken\n")
    r = client.post("/v1/rank", json=body)
    assert r.status_code == 200 and r.json()["policy_version"] == "v-good"
    assert "v-broken" in client.get("/v1/policy").json()["last_error"]


def _publish_two_versions(tiny_artifact_factory):
    """v-one, then v-two (served), in this home's policy folder, which is returned."""
    from movierec.settings import get_settings

    policy_dir = get_settings().models_dir / "policy"
    for version in ("v-one", "v-two"):
        publish_policy(tiny_artifact_factory(version), policy_dir)
    return policy_dir


def test_cli_use_names_what_is_published(tmp_path, tiny_artifact_factory, monkeypatch):
    from typer.testing import CliRunner

    from movierec.cli import app
    from movierec.settings import get_settings

    monkeypatch.setenv("MOVIEREC_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        policy_dir = _publish_two_versions(tiny_artifact_factory)
        refused = CliRunner().invoke(app, ["rl", "use", "v-nine"])
        used = CliRunner().invoke(app, ["rl", "use", "v-one"])
    finally:
        get_settings.cache_clear()
    assert refused.exit_code == 2 and "v-one, v-two" in refused.output and "Traceback" not in refused.output
    assert used.exit_code == 0 and "v-one (was v-two)" in used.output and current_version(policy_dir) == "v-one"


@pytest.mark.integration
def test_cli_use_drops_the_cached_lists_the_version_before_chose(tmp_path, tiny_artifact_factory, monkeypatch):
    """A rollback with a Redis configured: every user's cached lists go (the stale copies stay),
    and a second drop is queued for a few seconds later, on the same Redis."""
    import json
    from datetime import datetime, timezone

    import redis
    from typer.testing import CliRunner

    from movierec.cli import app
    from movierec.settings import get_settings
    from movierec.tasks.cache import PUBLISH_SETTLE_S

    url = "redis://127.0.0.1:6379/8"  # the RL tests' database
    client = redis.Redis.from_url(url)
    client.flushdb()
    monkeypatch.setenv("MOVIEREC_HOME", str(tmp_path))
    monkeypatch.setenv("MOVIEREC_REDIS_URL", url)
    get_settings.cache_clear()
    try:
        _publish_two_versions(tiny_artifact_factory)
        for key in ("recs:1:abc", "recs:1:history", "recs:22:def", "recs_stale:1:abc"):
            client.set(key, "[]")
        used = CliRunner().invoke(app, ["rl", "use", "v-one"])
        queued = [json.loads(m) for m in client.lrange("celery", 0, -1)]
        remaining = sorted(k.decode() for k in client.keys("recs*"))
    finally:
        get_settings.cache_clear()
        client.flushdb()
    assert used.exit_code == 0 and "3 dropped" in used.output, used.output
    assert remaining == ["recs_stale:1:abc"]
    assert [m["headers"]["task"] for m in queued] == ["movierec.tasks.cache.drop_every_cached_list"]
    due_in = (datetime.fromisoformat(queued[0]["headers"]["eta"]) - datetime.now(timezone.utc)).total_seconds()
    assert 0 < due_in <= PUBLISH_SETTLE_S


@pytest.mark.integration
def test_cli_use_without_a_configured_redis_drops_the_running_embedded_ones_lists(tmp_path, tiny_artifact_factory, monkeypatch):
    """No MOVIEREC_REDIS_URL, a stack on embedded servers under this home: the rollback reaches the
    embedded Redis the gateway caches in (found through its URL file)."""
    import redis
    from typer.testing import CliRunner

    from movierec.cli import app
    from movierec.launcher.servers import EmbeddedRedis, servers_folder
    from movierec.settings import get_settings

    monkeypatch.setenv("MOVIEREC_HOME", str(tmp_path))
    monkeypatch.delenv("MOVIEREC_REDIS_URL", raising=False)
    get_settings.cache_clear()
    embedded = EmbeddedRedis(servers_folder(tmp_path) / "redis")
    try:
        client = redis.Redis.from_url(embedded.start())
        _publish_two_versions(tiny_artifact_factory)
        client.set("recs:1:abc", "[]")
        client.set("recs_stale:1:abc", "[]")
        used = CliRunner().invoke(app, ["rl", "use", "v-one"])
        remaining = sorted(k.decode() for k in client.keys("recs*"))
    finally:
        embedded.stop()
        get_settings.cache_clear()
    assert used.exit_code == 0 and "1 dropped" in used.output, used.output
    assert remaining == ["recs_stale:1:abc"]
