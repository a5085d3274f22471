"""Issue 6, done when: the whole stack on this machine's real PostgreSQL and Redis, then once more
on embedded servers with no URLs configured, exercised through the gateway:

1. recommendations for a known user; 2. for a new user from liked movies; 3. filters honoured;
4. feedback stored exactly once; 5. the cache invalidated and the next list changed; 6. a new
movie added through the feature-extractor and recommended without restarting anything; 7. a
Celery task run by a real worker.

The services need a feature store and a trained fusion model. They come from
``$MOVIEREC_E2E_HOME`` when set, else are built once into ``<home>/e2e-home`` (real MiniLM text
features and a short fusion training, through the same CLI commands the launcher runs) and
copied into a fresh folder per run, so nothing the test adds touches them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from movierec.launcher.stack import LocalStack, StackOptions
from movierec.settings import REPO_ROOT, Settings, get_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MOVIEREC = str(Path(sys.executable).parent / "movierec")
KNOWN_USER = 1
LIKED = [1, 2355, 3114]  # Toy Story, A Bug's Life, Toy Story 2
PATIENT_GATEWAY = {"MOVIEREC_GATEWAY_POLICY_TIMEOUT_S": "10", "MOVIEREC_GATEWAY_FEEDBACK_TIMEOUT_S": "10",
                   "MOVIEREC_GATEWAY_RANKER_TIMEOUT_S": "10"}
"""The gateway's timeouts here: past its defaults (policy 0.3 s, feedback 1 s, ranker 2 s) it serves
a fallback (the ranker's order with no decision, the dataset's history), which is right in
production but would turn a first, cold call on a loaded machine into a failure of an assertion
about something else. The fallbacks have their own tests (tests/serving/test_gateway.py)."""


def _built(home: Path) -> bool:
    return (home / "models" / "fusion" / "current").is_dir() and (home / "features" / "text").is_dir()


@pytest.fixture(scope="session")
def artifacts_home() -> Path:
    """A home with a text feature store and a trained fusion model (built once, then reused)."""
    given = os.environ.get("MOVIEREC_E2E_HOME")
    home = Path(given) if given else get_settings().home / "e2e-home"
    if _built(home):
        return home
    if given:
        pytest.fail(f"MOVIEREC_E2E_HOME={given} has no models/fusion/current or features/text")
    env = dict(os.environ, MOVIEREC_HOME=str(home), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    for args in (["features", "build", "-m", "text", "--quiet"], ["model", "train", "--set", "epochs=3"]):
        result = subprocess.run([MOVIEREC, *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True)
        assert result.returncode == 0, f"movierec {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert _built(home)
    return home


def _stack_home(artifacts: Path, tmp: Path) -> Path:
    home = tmp / "home"
    for part in ("features", "models"):
        shutil.copytree(artifacts / part, home / part, symlinks=True)
    return home


def _services() -> tuple[str, ...]:
    names = ["gateway", "ranker", "feedback", "feature-extractor"]
    if importlib.util.find_spec("movierec_policy.app") is not None:
        names.append("policy")
    return tuple(names)


def _stack(home: Path, port_offset: int, database_url: str | None, redis_url: str | None, prometheus: bool = False,
           replicas: dict[str, int] | None = None) -> LocalStack:
    settings = Settings(home=home, database_url=None, redis_url=None)
    options = StackOptions(
        services=_services(), pipeline=False, database_url=database_url, redis_url=redis_url, prometheus=prometheus,
        port_offset=port_offset, ready_timeout_s=420, replicas=replicas or {},
        extra_env={"MOVIEREC_FEATURES_MODALITIES": '["text"]', "OMP_NUM_THREADS": "1", **PATIENT_GATEWAY},
    )
    return LocalStack(settings, options, say=lambda m: None)


def _recommend(client: httpx.Client, **body) -> dict:
    response = client.post("/v1/recommendations", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _worker_task_count(stack: LocalStack, task: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{stack.worker_metrics_port}/metrics", timeout=5).text
    prefix = f'celery_tasks_total{{outcome="succeeded",task="{task}"}} '
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


def _worker_counted(stack: LocalStack, task: str, above: float, wait_s: float = 30) -> bool:
    """Whether the worker's count of ``task`` rises above ``above`` within ``wait_s``.

    The worker counts a task after it returns and its result is stored (``task_postrun``), so a
    client can see what the task did (the deleted cache keys) a moment before the count moves.
    """
    deadline = time.monotonic() + wait_s
    while _worker_task_count(stack, task) <= above:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def exercise(stack: LocalStack) -> None:
    with httpx.Client(base_url=stack.url("gateway"), timeout=60) as client:
        # 1. a known user
        first = _recommend(client, user_id=KNOWN_USER, k=10)
        assert len(first["items"]) == 10 and not first["degraded"]
        assert first["model_version"] and first["policy_version"]
        assert all(item["explanation"]["text"] for item in first["items"])
        assert len({item["movie_id"] for item in first["items"]}) == 10

        # 2. a new user from liked movies: liked ones are not recommended back
        new = _recommend(client, liked_movie_ids=LIKED, k=10)
        assert len(new["items"]) == 10
        assert not {item["movie_id"] for item in new["items"]} & set(LIKED)

        # 3. filters honoured
        filters = {"genres_include": ["Comedy"], "genres_exclude": ["Horror"], "year_min": 1990, "year_max": 2005, "min_avg_rating": 3.0}
        filtered = _recommend(client, user_id=KNOWN_USER, k=10, filters=filters)
        assert filtered["items"]
        for item in filtered["items"]:
            assert "Comedy" in item["genres"] and "Horror" not in item["genres"], item
            assert 1990 <= item["year"] <= 2005 and item["average_rating"] >= 3.0, item
        bad = client.post("/v1/recommendations", json={"user_id": KNOWN_USER, "k": 1000})
        assert bad.status_code == 422 and "k" in bad.json()["error"]["message"]

        # 4. feedback stored exactly once, 5. cache invalidated by the worker and the next list changed
        cached = _recommend(client, user_id=KNOWN_USER, k=10)
        assert cached["cached"] and [i["movie_id"] for i in cached["items"]] == [i["movie_id"] for i in first["items"]]
        invalidations_before = _worker_task_count(stack, "invalidate_user_recs")
        top = first["items"][0]["movie_id"]
        event = {"event_id": f"e2e-{uuid.uuid4().hex}", "user_id": KNOWN_USER, "movie_id": top, "kind": "rating", "rating": 2.0,
                 "slate": [i["movie_id"] for i in first["items"]], "position": 0, "policy_version": first["policy_version"],
                 "decision_id": first["decision_id"]}
        assert first["decision_id"], "the policy's list was not logged as a decision"
        assert client.post("/v1/feedback", json=event).status_code in (200, 201, 202)
        assert client.post("/v1/feedback", json=event).status_code in (200, 201, 202)  # a client retry
        stored = httpx.get(f"{stack.url('feedback')}/v1/users/{KNOWN_USER}/events", timeout=10).json()["events"]
        assert [e["event_id"] for e in stored].count(event["event_id"]) == 1
        assert next(e for e in stored if e["event_id"] == event["event_id"])["decision_id"] == event["decision_id"]

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            after = _recommend(client, user_id=KNOWN_USER, k=10)
            if not after["cached"]:
                break
            time.sleep(0.5)
        assert not after["cached"], "the cached list was never invalidated"
        assert top not in [i["movie_id"] for i in after["items"]]
        assert [i["movie_id"] for i in after["items"]] != [i["movie_id"] for i in first["items"]]

        # 7. the invalidation ran as a Celery task on the real worker
        assert _worker_counted(stack, "invalidate_user_recs", above=invalidations_before), \
            "the worker never counted an invalidate_user_recs task"

        # 6. a new movie through the feature-extractor, recommended without a restart
        plot = "A young robot explorer crosses a frozen ocean on a distant moon to save her family."
        added = client.post("/v1/admin/movies", data={"title": "Frozen Moon Odyssey", "year": "2031",
                                                      "genres": "Animation|Adventure|Children", "plot": plot})
        assert added.status_code == 201, added.text
        new_id = added.json()["movie"]["movie_id"]
        assert "text" in added.json()["modalities"]
        assert client.get(f"/v1/movies/{new_id}").json()["title"] == "Frozen Moon Odyssey"
        future = _recommend(client, liked_movie_ids=LIKED, k=5, filters={"year_min": 2030})
        assert [i["movie_id"] for i in future["items"]] == [new_id]
        assert _recommend(client, user_id=KNOWN_USER, k=5, filters={"year_min": 2030})["items"][0]["movie_id"] == new_id


def test_the_whole_stack_on_the_machines_postgresql_and_redis(artifacts_home, database_url, e2e_redis_url, private_tmp, port_offsets,
                                                              prometheus_installed, prometheus_check):
    with _stack(_stack_home(artifacts_home, private_tmp), port_offsets(), database_url, e2e_redis_url, prometheus=True,
                replicas={"ranker": 2}) as stack:
        assert stack._postgres is None and stack._redis is None  # the configured servers, not embedded ones
        exercise(stack)
        # two ranker replicas: the gateway spread the load over both, and both serve the added movie
        replicas = stack.replica_urls("ranker")
        assert len(replicas) == 2
        for url in replicas:
            metrics = httpx.get(f"{url}/metrics", timeout=10).text
            topn = [line for line in metrics.splitlines() if line.startswith("http_requests_total{") and '"/v1/topn"' in line]
            assert sum(float(line.split()[-1]) for line in topn) > 0, f"{url} served no top-N request"
            assert httpx.get(f"{url}/v1/info", timeout=10).json()["added_movie_ids"], f"{url} does not serve the added movie"
        # Prometheus scrapes every service and the worker; every dashboard panel has data
        assert prometheus_check(stack) >= 10
        cache = redis.Redis.from_url(e2e_redis_url)
        assert cache.keys(f"recs:{KNOWN_USER}:*"), "the gateway's cache is in the configured Redis"


def test_the_whole_stack_on_embedded_servers_with_no_urls(artifacts_home, private_tmp, port_offsets, monkeypatch):
    monkeypatch.delenv("MOVIEREC_DATABASE_URL", raising=False)
    monkeypatch.delenv("MOVIEREC_REDIS_URL", raising=False)
    home = _stack_home(artifacts_home, private_tmp)
    with _stack(home, port_offsets(), None, None) as stack:
        assert stack._postgres is not None and stack._redis is not None
        assert (home / "servers" / "postgres" / "PG_VERSION").exists()
        exercise(stack)
