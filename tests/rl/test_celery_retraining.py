"""The online loop for real: events in PostgreSQL, the retraining task run by a Celery worker on
the Redis broker, and the served version changes (then a policy service picks it up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from movierec.rl.artifact import current_version, publish_policy
from movierec.rl.feedback_log import simulate_feedback_events
from movierec.rl.ranking import PolicyRanker
from movierec.settings import REPO_ROOT

ADMIN_URL = os.environ.get("MOVIEREC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_SERVER = os.environ.get("MOVIEREC_TEST_REDIS_URL", "redis://127.0.0.1:6379")
RL_REDIS_DB = 8  # not used by the other test folders


@pytest.fixture
def database_url():
    from movierec.benchmarks.scratch import scratch_database
    from movierec.storage import migrate

    with scratch_database(ADMIN_URL, prefix="movierec_rl_test") as url:
        migrate(url)
        yield url


@pytest.fixture
def redis_url():
    url = f"{REDIS_SERVER}/{RL_REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    yield url
    redis.Redis.from_url(url).flushdb()


@pytest.mark.slow
@pytest.mark.integration
def test_a_celery_worker_retrains_from_postgres_feedback_and_the_version_changes(
        tmp_path, database_url, redis_url, tiny_world, tiny_artifact_factory):
    from movierec.storage import FeedbackStore, create_engine_for
    from movierec.tasks.app import make_celery
    from movierec.tasks.policy import RETRAIN_TASK
    from movierec_policy.app import create_app
    from movierec_policy.settings import PolicySettings

    home = tmp_path / "home"
    policy_dir = home / "models" / "policy"
    publish_policy(tiny_artifact_factory("v-base"), policy_dir)
    service = TestClient(create_app(PolicySettings(policy_dir=policy_dir, reload_interval_s=0)))
    cand = [{"movie_id": int(tiny_world.items.movie_ids[r]), "score": 0.0} for r in tiny_world.candidate_rows[0][:10]]
    assert service.post("/v1/rank", json={"user_id": 1, "candidates": cand}).json()["policy_version"] == "v-base"

    store = FeedbackStore(create_engine_for(database_url))
    events = simulate_feedback_events(tiny_world, PolicyRanker(tiny_artifact_factory("v-base")), np.arange(12), seed=4)
    for e in events:
        store.record(e)
    assert store.count() == len(events)

    env = dict(os.environ, MOVIEREC_HOME=str(home), MOVIEREC_REDIS_URL=redis_url, MOVIEREC_DATABASE_URL=database_url,
               MOVIEREC_RETRAIN_EVERY_S="0", OMP_NUM_THREADS="1")
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "movierec.tasks.app", "worker", "--pool=solo", "--loglevel=INFO",
                                 "-n", f"rl-test-{uuid.uuid4().hex[:6]}@%h"], cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            app = make_celery(redis_url)
            deadline = time.monotonic() + 120
            while not app.control.ping(timeout=1.0):
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "the worker did not answer within 120 s:\n" + log_path.read_text()
            cache = redis.Redis.from_url(redis_url)
            for key in ("recs:1:abc", "recs:1:history", "recs_stale:1:abc"):
                cache.set(key, "[]")
            result = app.send_task(RETRAIN_TASK, kwargs={"min_slates": 20, "tolerance": 1.0, "min_held_out_users": 4}).get(timeout=300)
            # the lists the earlier version chose go at once; the stale copies (for ranker outages) stay
            assert result["cached_lists_dropped"] == 2 and cache.keys("recs:*") == [] and cache.exists("recs_stale:1:abc")
            # and once more a few seconds later: a list cached before the policy service saw the new version
            cache.set("recs:1:def", "[]")
            deadline = time.monotonic() + 60
            while cache.exists("recs:1:def"):
                assert time.monotonic() < deadline, "the second drop did not come:\n" + log_path.read_text()
                time.sleep(0.5)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert result["status"] == "published", result
    assert result["events"] == len(events)
    new = current_version(policy_dir)
    assert new == result["version"] and new != "v-base"
    state = json.loads((policy_dir / "retrain_state.json").read_text())
    assert state["last_seq"] == state["used_seq"] == store.last_seq()
    # the running service picks the new version up without a restart
    assert service.post("/v1/rank", json={"user_id": 1, "candidates": cand}).json()["policy_version"] == new


@pytest.mark.integration
def test_retraining_counts_the_checks_of_the_served_version(tmp_path, database_url, tiny_world, tiny_artifact_factory):
    """Each kept check of the same served version is counted in the state file and the next one
    demands more confidence and more evidence; a publish or a rollback to another version starts
    the count again."""
    from movierec.rl.artifact import use_version
    from movierec.settings import Settings
    from movierec.storage import FeedbackStore, create_engine_for
    from movierec.tasks.policy import run_retraining

    settings = Settings(home=tmp_path / "home", database_url=database_url)
    policy_dir = settings.models_dir / "policy"
    publish_policy(tiny_artifact_factory("v-base"), policy_dir)
    store = FeedbackStore(create_engine_for(database_url))

    def log_sessions(seed: int) -> None:
        ranker = PolicyRanker(tiny_artifact_factory("v-base"))
        for e in simulate_feedback_events(tiny_world, ranker, np.arange(12), seed=seed, id_prefix=f"batch-{seed}"):
            store.record(e)

    def retrain(tolerance: float, publish: bool = True) -> dict:
        return run_retraining(min_slates=20, tolerance=tolerance, epochs=1, min_held_out_users=4, publish=publish,
                              settings=settings, store=store)

    def state() -> dict:
        return json.loads((policy_dir / "retrain_state.json").read_text())

    log_sessions(5)
    first = retrain(-100.0)  # a gain no data can show: kept
    assert first["status"] == "kept" and "96.96% lower bound of the gain (check 1 of v-base)" in first["reason"]
    assert state() == {"last_seq": 0, "source": store.identity(), "checked_version": "v-base", "checks": 1,
                       "checked_slates": first["slates"]}
    same = retrain(-100.0)  # nothing new: not checked again on the same evidence
    assert same["status"] == "skipped" and f"fewer than the {-(-3 * first['slates'] // 2)} needed" in same["reason"]
    assert f"(1.5x the {first['slates']} of check 1 of v-base)" in same["reason"]
    assert state()["checks"] == 1

    log_sessions(6)
    second = retrain(-100.0)
    assert second["status"] == "kept" and "99.24% lower bound of the gain (check 2 of v-base)" in second["reason"]
    assert state()["checks"] == 2 and state()["checked_slates"] == second["slates"] > first["slates"]
    log_sessions(7)
    log_sessions(70)  # two batches: the next check needs 1.5x the evidence of the last, whatever the sessions' lengths
    assert retrain(-100.0, publish=False)["status"] == "kept" and state()["checks"] == 2  # a dry run is not a check

    published = retrain(1.0)
    assert published["status"] == "published" and "(check 3 of v-base)" in published["reason"]
    assert state() == {"last_seq": store.last_seq(), "used_seq": store.last_seq(), "source": store.identity(), "decisions_since": "0-0",
                       "version": published["version"],
                       "checked_version": published["version"], "checks": 0}

    log_sessions(8)
    use_version(policy_dir, "v-base")  # a rollback: the served version is no longer the one last checked
    again = retrain(-100.0)
    assert again["status"] == "kept" and "96.96% lower bound of the gain (check 1 of v-base)" in again["reason"]
    assert state()["checked_version"] == "v-base" and state()["checks"] == 1


@pytest.mark.integration
def test_a_seq_remembered_from_another_database_is_not_trusted(tmp_path, database_url, tiny_world, tiny_artifact_factory):
    """A publish remembers how far it read one database, and kept checks count against the served
    version; a round on another database (a benchmark's next scratch database, one created again)
    reads all of that one, even once its seq has grown past the remembered one, and counts its
    checks afresh."""
    from movierec.benchmarks.scratch import scratch_database
    from movierec.settings import Settings
    from movierec.storage import FeedbackStore, create_engine_for, migrate
    from movierec.tasks.policy import run_retraining

    settings = Settings(home=tmp_path / "home", database_url=database_url)
    publish_policy(tiny_artifact_factory("v-base"), settings.models_dir / "policy")

    def log_sessions(store: FeedbackStore, seeds: list[int]) -> None:
        for seed in seeds:
            for e in simulate_feedback_events(tiny_world, PolicyRanker(tiny_artifact_factory("v-base")), np.arange(12), seed=seed,
                                              id_prefix=f"batch-{seed}"):
                store.record(e)

    def retrain(store: FeedbackStore, tolerance: float) -> dict:
        return run_retraining(min_slates=20, tolerance=tolerance, epochs=1, min_held_out_users=4, settings=settings, store=store)

    first = FeedbackStore(create_engine_for(database_url))
    log_sessions(first, [5, 6])
    published = retrain(first, 1.0)
    assert published["status"] == "published", published["reason"]
    log_sessions(first, [7])
    assert f"(check 1 of {published['version']})" in retrain(first, -100.0)["reason"]
    with scratch_database(ADMIN_URL, prefix="movierec_rl_test") as other_url:
        migrate(other_url)
        other = FeedbackStore(create_engine_for(other_url))
        log_sessions(other, [5, 6, 7, 8])
        assert other.identity() != first.identity() and other.last_seq() > first.last_seq()
        result = retrain(other, -100.0)
        assert result["events"] == other.count() and f"(check 1 of {published['version']})" in result["reason"]
        state = json.loads((settings.models_dir / "policy" / "retrain_state.json").read_text())
        assert state["source"] == other.identity() and state["last_seq"] == 0 and state["checks"] == 1  # a kept check consumed nothing


@pytest.mark.integration
def test_the_decision_log_is_read_since_the_last_publish_and_forgets_deleted_users(
        tmp_path, database_url, redis_url, tiny_world, tiny_artifact_factory):
    """The gateway's decision log in real Redis: read in order after a stream id, joined with the
    PostgreSQL events by the retraining, and read again only from the publish on."""
    from movierec.settings import Settings
    from movierec.storage import FeedbackStore, create_engine_for
    from movierec.storage.decisions import decision_entry, read_decisions_since, user_entry_ids
    from movierec.tasks.policy import run_retraining

    client = redis.Redis.from_url(redis_url)
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    policy_dir = settings.models_dir / "policy"
    publish_policy(tiny_artifact_factory("v-base"), policy_dir)
    store = FeedbackStore(create_engine_for(database_url))
    decisions: list = []
    for e in simulate_feedback_events(tiny_world, PolicyRanker(tiny_artifact_factory("v-base")), np.arange(12), seed=2, decisions=decisions):
        if e.kind != "impression":  # the gateway's clients send only what users did
            store.record(e)
    key = settings.decision_log_key
    now_ms = int(client.time()[0]) * 1000
    for i, d in enumerate(decisions[:-1]):  # logged a minute ago
        client.xadd(key, decision_entry(d), id=f"{now_ms - 60_000}-{i + 1}")
    client.xadd(key, decision_entry(decisions[-1]), id=f"{now_ms + 3_600_000}-0")  # as if just logged: its feedback may be on its way
    settled = decisions[:-1]

    read, last, pending = read_decisions_since(client, key)
    assert [d.decision_id for d in read] == [d.decision_id for d in settled] and last == f"{now_ms - 60_000}-{len(settled)}"
    assert pending == {decisions[-1].decision_id}  # named, so that its feedback is read again with it
    assert read_decisions_since(client, key, last) == ([], last, pending)
    assert len(read_decisions_since(client, key, "99999999999999-0")[0]) == len(settled)  # an id from another Redis: read it all
    entries = client.xrange(key)
    assert len(user_entry_ids(entries, decisions[0].user_id)) == sum(d.user_id == decisions[0].user_id for d in decisions)

    published = run_retraining(min_slates=20, tolerance=1.0, epochs=1, min_held_out_users=4, settings=settings, store=store, decision_log=client)
    assert published["status"] == "published", published["reason"]
    assert published["decisions_read"] == len(settled) == published["decisions"] == published["slates"]
    assert published["current_propensity_gap"] == pytest.approx(0.0, abs=1e-6)
    assert json.loads((policy_dir / "retrain_state.json").read_text())["decisions_since"] == last
    after = run_retraining(min_slates=20, tolerance=1.0, epochs=1, settings=settings, store=store, decision_log=client)
    assert after["status"] == "skipped" and after["decisions_read"] == 0
    without_redis = run_retraining(min_slates=20, tolerance=1.0, epochs=1, settings=settings, store=store,
                                   decision_log=redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2))
    assert without_redis["decisions_read"] == 0  # the events alone, and a warning


@pytest.mark.integration
def test_feedback_on_decisions_too_young_at_a_publish_is_read_with_them_next_round(
        tmp_path, database_url, redis_url, tiny_world, tiny_artifact_factory):
    """A publish reads the events to the end but leaves the decisions of the last ``settle_s``
    for the next round: the feedback already given on those must be read again with them (it was
    lost before, and the next round valued them as skipped lists), while events that name no
    decision, already used by the publish, must not be used twice."""
    from movierec.rl.online import retrain_from_events
    from movierec.settings import Settings
    from movierec.storage import FeedbackStore, create_engine_for
    from movierec.storage.decisions import decision_entry
    from movierec.tasks.policy import run_retraining

    client = redis.Redis.from_url(redis_url)
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    policy_dir = settings.models_dir / "policy"
    publish_policy(tiny_artifact_factory("v-base"), policy_dir)
    store = FeedbackStore(create_engine_for(database_url))
    ranker = PolicyRanker(tiny_artifact_factory("v-base"))

    def served(users, seed: int, prefix: str, with_decisions: bool = True):
        decisions: list = [] if with_decisions else None
        events = [e for e in simulate_feedback_events(tiny_world, ranker, users, seed=seed, id_prefix=prefix, decisions=decisions)
                  if e.kind != "impression"]
        return events, decisions or []

    settled_events, settled = served(np.arange(12), 2, "settled")
    young_events, young = served(np.arange(12, 28), 3, "young")
    undecided_events, _ = served(np.arange(28, 34), 4, "undecided", with_decisions=False)
    for e in settled_events + young_events + undecided_events:  # the young list's feedback arrives before the publish
        store.record(e)
    key = settings.decision_log_key
    now_ms = int(client.time()[0]) * 1000

    def log(decisions, at_ms: int) -> None:
        for i, d in enumerate(decisions):
            client.xadd(key, decision_entry(d), id=f"{at_ms}-{i + 1}")

    log(settled, now_ms - 120_000)
    log(young, now_ms + 3_600_000)  # as if just logged
    published = run_retraining(min_slates=20, tolerance=1.0, epochs=1, min_held_out_users=4, settings=settings, store=store, decision_log=client)
    assert published["status"] == "published" and published["decisions_read"] == len(settled), published
    state = json.loads((policy_dir / "retrain_state.json").read_text())
    young_ids = {d.decision_id for d in young}
    first_young = min(e.seq for e in store.events_since(0, limit=10_000) if e.decision_id in young_ids)
    assert state["last_seq"] == first_young - 1 and state["used_seq"] == store.last_seq()

    # time passes: the young decisions settle (the stream is written again with them a minute and a half old)
    client.delete(key)
    log(settled, now_ms - 120_000)
    log(young, now_ms - 90_000)
    young_stored = [e for e in store.events_since(0, limit=10_000) if e.decision_id in young_ids]
    direct = retrain_from_events(young_stored, policy_dir, decisions=young, epochs=1, min_held_out_users=4, publish=False)
    after = run_retraining(min_slates=20, tolerance=1.0, epochs=1, min_held_out_users=4, settings=settings, store=store, decision_log=client)
    assert after["decisions_read"] == len(young) == after["slates"], after  # no slate rebuilt from the undecided events again
    assert after["current_slates"] == 0  # v-base chose them all: the version published since is valued off-policy only
    assert after["current_snips"] == pytest.approx(direct.current_snips) and direct.current_snips > 0
