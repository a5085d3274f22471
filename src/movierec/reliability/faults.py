"""The fault scenarios, each against a running ``FaultStack`` under steady load on loopback.

Each function injects one fault for real (SIGKILL of a process, stop and start of a server),
keeps the load going through it, checks what the system promises, and returns a
``FaultResult`` with the figures. Tests and ``movierec reliability run`` call the same functions.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import redis

from movierec.reliability.load import SteadyLoad
from movierec.reliability.report import FaultResult
from movierec.reliability.retraining import KILL_POOL_PROCESS, RETRAINING_KILLS, retraining_drill
from movierec.reliability.stack import FaultStack
from movierec.security import Authenticator, get_security_settings
from movierec.storage import FeedbackStore, create_engine_for
from movierec.tasks.app import make_celery, policy_tasks_present

MOVIES = (1, 2, 3, 6, 10, 32, 47, 50, 110, 150, 260, 296, 318, 356, 380, 457, 480, 527, 589, 593, 1196, 1198, 2571, 2959)
"""ml-latest-small movies (all in the catalog) the load uses."""
RANKER_ORDER = "ranker-order"


def _recs_request(n: int) -> tuple[str, str, dict]:
    """Known users (each a different one, so uncached) and new users from liked movies, alternately."""
    if n % 2 == 0:
        return "POST", "/v1/recommendations", {"json": {"user_id": 1 + (n * 37) % 600, "k": 10}}
    liked = [MOVIES[(n + i) % len(MOVIES)] for i in range(3)]
    return "POST", "/v1/recommendations", {"json": {"liked_movie_ids": liked, "k": 10}}


def _recs_kind(kwargs: dict) -> str:
    return "known" if "user_id" in kwargs["json"] else "new"


def fresh_users(n: int) -> tuple[int, ...]:
    """``n`` user ids no earlier run used (feedback-only users; counts per user stay per run)."""
    start = 10_000_000 + (uuid.uuid4().int % 100_000_000) // 100 * 100
    return tuple(range(start, start + n))


def user_headers(user_id: int) -> dict[str, str]:
    """The user's own API key, as a client writing that user's feedback sends it."""
    return {"X-API-Key": Authenticator(get_security_settings()).api_key_for(user_id)}


def _feedback_factory(run: str, users: tuple[int, ...]):
    def make(n: int) -> tuple[str, str, dict]:
        user = users[n % len(users)]
        event = {"event_id": f"{run}-{n:05d}", "user_id": user, "movie_id": MOVIES[n % len(MOVIES)], "kind": "click"}
        return "POST", "/v1/feedback", {"json": event, "headers": user_headers(user)}
    return make


def _event_id(kwargs: dict) -> str | None:
    body = kwargs.get("json") or {}
    return body.get("event_id")


def _stored_ids(stack: FaultStack, event_ids: set[str]) -> set[str]:
    store = FeedbackStore(create_engine_for(stack.database_url, pool_size=1))
    try:
        return {e for e in event_ids if store.get(e) is not None}
    finally:
        store.engine.dispose()


def _stored_rows(stack: FaultStack, users: tuple[int, ...]) -> int:
    store = FeedbackStore(create_engine_for(stack.database_url, pool_size=1))
    try:
        return sum(store.count(user_id=u) for u in users)
    finally:
        store.engine.dispose()


def _wait_stored(stack: FaultStack, acknowledged: set[str], timeout_s: float) -> tuple[set[str], float]:
    """Wait until every acknowledged event is in PostgreSQL; returns what is stored and how long it took."""
    start = time.monotonic()
    stored: set[str] = set()
    while time.monotonic() - start < timeout_s:
        stored = _stored_ids(stack, acknowledged)
        if stored == acknowledged:
            break
        time.sleep(0.5)
    return stored, time.monotonic() - start


def ranker_killed(stack: FaultStack, rate_per_s: float = 8.0, before_s: float = 3.0, down_s: float = 6.0) -> FaultResult:
    """SIGKILL the ranker under load; serve degraded (stale cache or popular) with no 5xx; recover."""
    load = SteadyLoad(stack.url("gateway"), _recs_request, rate_per_s=rate_per_s, max_s=180, key_of=_recs_kind).start()
    time.sleep(before_s)
    child = stack.kill("ranker")
    killed_at = load.now()
    time.sleep(down_s)
    relaunched_at = load.now()
    startup_s = stack.restart(child)
    load.wait_until(lambda s: s.first_healthy_after(relaunched_at, "new") is not None, timeout_s=30)
    time.sleep(2.0)
    summary = load.stop()
    healthy = summary.first_healthy_after(relaunched_at, "new")
    during = [o for o in summary.outcomes if killed_at + 0.5 <= o.t <= relaunched_at]
    result = FaultResult(
        "ranker killed", "SIGKILL of the ranker process mid-load, relaunched after "
        f"{down_s:g} s (it took {startup_s:.1f} s to be ready)",
        f"{rate_per_s:g} req/s recommendations (known and new users alternately), {summary.duration_s:.0f} s",
        recovery_s=round(healthy - relaunched_at, 2) if healthy is not None else None,
    ).count(summary)
    result.checks = {
        "zero 5xx": summary.errors_5xx == 0,
        "every request answered": summary.transport_errors == 0,
        "answers while the ranker was down are marked degraded": bool(during) and all(o.degraded for o in during if o.key == "new"),
        "recovers by itself (normal answers once the ranker is back)": healthy is not None,
    }
    result.notes.append(f"{len(during)} requests while the ranker was down; recovery time counts from the relaunch, including the ranker's start-up")
    return result


def policy_killed(stack: FaultStack, rate_per_s: float = 8.0, before_s: float = 2.0, down_s: float = 5.0) -> FaultResult:
    """SIGKILL the policy under load: the ranker's order is served, no 5xx. When this build has no
    policy service the gateway runs without one throughout, which is the same promise."""
    load = SteadyLoad(stack.url("gateway"), _recs_request, rate_per_s=rate_per_s, max_s=120, key_of=_recs_kind).start()
    present = stack.running("policy")
    notes = []
    time.sleep(before_s)
    window = (load.now(), None)
    if present:
        child = stack.kill("policy")
        window = (load.now() + 0.5, None)
        time.sleep(down_s)
        window = (window[0], load.now())
        stack.restart(child)
        time.sleep(2.0)
    else:
        notes.append("this build has no policy service: the gateway ran without one for the whole test")
        time.sleep(down_s)
    summary = load.stop()
    end = window[1] if window[1] is not None else summary.duration_s
    during = [o for o in summary.outcomes if window[0] <= o.t <= end and o.status == 200 and not o.degraded]
    result = FaultResult(
        "policy killed", "SIGKILL of the policy process mid-load, relaunched after " f"{down_s:g} s" if present
        else "policy service absent", f"{rate_per_s:g} req/s recommendations, {summary.duration_s:.0f} s",
        notes=notes,
    ).count(summary)
    result.statuses.update({f"policy_version={k}": v for k, v in summary.labels().items()})
    result.checks = {
        "zero 5xx": summary.errors_5xx == 0,
        "every request answered": summary.transport_errors == 0,
        "the ranker's order is served while the policy is away": bool(during) and all(o.label == RANKER_ORDER for o in during),
    }
    return result


def postgres_restarted(stack: FaultStack, rate_per_s: float = 15.0, before_s: float = 2.0, down_s: float = 4.0,
                       after_s: float = 3.0) -> FaultResult:
    """Stop and start PostgreSQL during a burst of feedback: every acknowledged event stored exactly once."""
    run = f"pg-{uuid.uuid4().hex[:8]}"
    users = fresh_users(10)
    load = SteadyLoad(stack.url("gateway"), _feedback_factory(run, users), rate_per_s=rate_per_s, max_s=120, key_of=_event_id).start()
    time.sleep(before_s)
    down_at = load.now()
    stack.restart_postgres(down_s)
    back_at = load.now()
    time.sleep(after_s)
    summary = load.stop()
    acknowledged = summary.acknowledged_keys()
    stored, waited_s = _wait_stored(stack, acknowledged, timeout_s=90)
    rows = _stored_rows(stack, users)
    during = [o for o in summary.outcomes if down_at <= o.t <= back_at]
    result = FaultResult(
        "PostgreSQL restarted", f"embedded PostgreSQL stopped for {down_s:g} s (plus its stop and start time) during a burst of feedback",
        f"{rate_per_s:g} feedback events/s through the gateway, {summary.duration_s:.0f} s",
        acknowledged=len(acknowledged), stored=rows, recovery_s=round(back_at - down_at + waited_s, 2),
    ).count(summary)
    result.checks = {
        "zero 5xx": summary.errors_5xx == 0,
        "every request answered": summary.transport_errors == 0,
        "every acknowledged event is stored": stored == acknowledged,
        "stored exactly once (rows == acknowledged)": rows == len(acknowledged),
    }
    result.notes.append(f"{len(during)} events sent while the database was down ({sum(1 for o in during if o.status == 202)} answered 202 queued); "
                        f"the last acknowledged event was in PostgreSQL {waited_s:.1f} s after the load stopped")
    return result


def redis_restarted(stack: FaultStack, rate_per_s: float = 10.0, before_s: float = 2.0, down_s: float = 3.0) -> FaultResult:
    """Stop and start Redis: recommendations still answer (uncached), feedback is stored, Celery
    reconnects and runs tasks, the cache warms again."""
    run = f"redis-{uuid.uuid4().hex[:8]}"
    users = fresh_users(10)
    feedback = _feedback_factory(run, users)

    def mixed(n: int):
        return _recs_request(n // 2) if n % 2 == 0 else feedback(n)

    load = SteadyLoad(stack.url("gateway"), mixed, rate_per_s=rate_per_s, max_s=120, key_of=_event_id).start()
    time.sleep(before_s)
    down_at = load.now()
    stack.restart_redis(down_s)
    back_at = load.now()
    celery = make_celery(stack.redis_url)
    reconnect_s = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            answered = celery.control.ping(timeout=1.0)
        except (redis.RedisError, OSError):  # Redis still loading its append-only file
            answered, _ = [], time.sleep(0.2)
        if answered:
            reconnect_s = round(load.now() - back_at, 2)
            break
    time.sleep(1.0)
    summary = load.stop()
    acknowledged = summary.acknowledged_keys()
    stored, _ = _wait_stored(stack, acknowledged, timeout_s=60)
    during = [o for o in summary.outcomes if down_at <= o.t <= back_at]

    # a task runs after the restart: the worker deletes a user's cache entry after feedback
    # sent straight to the feedback service (the gateway would delete it itself)
    client = redis.Redis.from_url(stack.redis_url)
    probe_user = fresh_users(1)[0]
    client.set(f"recs:{probe_user}:reliability-probe", "x")
    event = {"event_id": f"{run}-probe", "user_id": probe_user, "movie_id": 1, "kind": "click"}
    httpx.post(stack.url("feedback") + "/v1/events", json=event, timeout=10).raise_for_status()
    task_ran = _wait(lambda: not client.exists(f"recs:{probe_user}:reliability-probe"), 30)

    # the cache warms again: the second identical request is served from it
    body = {"user_id": 7, "k": 10}
    first = httpx.post(stack.url("gateway") + "/v1/recommendations", json=body, timeout=10)
    second = httpx.post(stack.url("gateway") + "/v1/recommendations", json=body, timeout=10)
    client.close()

    result = FaultResult(
        "Redis restarted", f"embedded Redis stopped for {down_s:g} s (SIGTERM, append-only file kept) under mixed load",
        f"{rate_per_s:g} req/s, recommendations and feedback alternately, {summary.duration_s:.0f} s",
        acknowledged=len(acknowledged), stored=len(stored), recovery_s=reconnect_s,
    ).count(summary)
    recs_during = [o for o in during if o.key is None]
    result.checks = {
        "zero 5xx": summary.errors_5xx == 0,
        "every request answered": summary.transport_errors == 0,
        "recommendations answered while Redis was down": bool(recs_during) and all(o.status == 200 for o in recs_during),
        "every acknowledged event is stored": stored == acknowledged,
        "Celery reconnects (worker answers a ping)": reconnect_s is not None,
        "a task runs after the restart (cache invalidation)": task_ran,
        "the cache warms again (second request served from it)": first.status_code == 200 and second.status_code == 200
        and bool(second.json().get("cached")),
    }
    result.notes.append("recovery time: from Redis being back to the Celery worker answering a ping")
    return result


def duplicates_and_out_of_order(stack: FaultStack, events: int = 30, duplicates: int = 10) -> FaultResult:
    """The same events twice over, in two different orders, for two users: stored once each,
    the same stored result whatever the order; a reused id with other content is refused."""
    run = uuid.uuid4().hex[:8]
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    plan = [(MOVIES[i % len(MOVIES)], ("click", "watch", "rating")[i % 3], i) for i in range(events)]

    def event(user: int, tag: str, movie: int, kind: str, i: int) -> dict:
        e = {"event_id": f"dup-{run}-{tag}-{i:03d}", "user_id": user, "movie_id": movie, "kind": kind,
             "occurred_at": (base + timedelta(minutes=i)).isoformat()}
        if kind == "watch":
            e["watch_seconds"] = 60.0 * (i + 1)
        if kind == "rating":
            e["rating"] = 0.5 + (i % 10) * 0.5
        return e

    users = fresh_users(2)
    orders = []
    for user, tag, seed in ((users[0], "a", 0), (users[1], "b", 1)):
        sends = [event(user, tag, *p) for p in plan]
        rng = random.Random(seed)
        sends += rng.sample(sends, duplicates)
        rng.shuffle(sends)
        if seed:
            sends.reverse()
        orders.append(sends)
    statuses: dict[str, int] = {}
    created = [0, 0]
    with httpx.Client(base_url=stack.url("gateway"), timeout=10) as client:
        for which, sends in enumerate(orders):
            for e in sends:
                response = client.post("/v1/feedback", json=e, headers=user_headers(e["user_id"]))
                statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
                created[which] += response.status_code == 201
        reused = orders[0][0]
        conflict = client.post("/v1/feedback", json={**reused, "movie_id": MOVIES[1] if reused["movie_id"] == MOVIES[0] else MOVIES[0]},
                               headers=user_headers(reused["user_id"]))
        statuses[str(conflict.status_code)] = statuses.get(str(conflict.status_code), 0) + 1
        histories = []
        for user in users:
            events_of_user = httpx.get(f"{stack.url('feedback')}/v1/users/{user}/events", params={"limit": 1000}, timeout=10).json()["events"]
            histories.append(sorted((e["occurred_at"], e["movie_id"], e["kind"], e["watch_seconds"], e["rating"]) for e in events_of_user))
    result = FaultResult(
        "duplicate and out-of-order events", f"{events} events per user, {duplicates} of them sent twice, shuffled; "
        "the second user gets them in another order", f"{2 * (events + duplicates) + 1} sequential feedback requests",
        requests=2 * (events + duplicates) + 1, errors_5xx=sum(v for k, v in statuses.items() if k.startswith("5")),
        acknowledged=2 * events, stored=sum(len(h) for h in histories), statuses=statuses,
    )
    result.checks = {
        "each event stored once (duplicates answer 200, not a second row)": created == [events, events] and [len(h) for h in histories] == [events, events],
        "the stored result does not depend on arrival order": histories[0] == histories[1],
        "a reused event id with other content is refused (409)": conflict.status_code == 409,
    }
    return result


def worker_killed_while_retraining(stack: FaultStack, kill: str = KILL_POOL_PROCESS, **options) -> FaultResult:
    """SIGKILL the pool process running a retraining task (``kill="pool process"``) or its whole
    worker (``"whole worker"``) mid-training; see ``movierec.reliability.retraining``."""
    if not policy_tasks_present():
        result = FaultResult(f"worker killed while retraining ({kill})", "SIGKILL of the Celery worker during policy retraining", "-")
        result.notes.append("not run: this build has no policy retraining task (movierec.tasks.policy) to interrupt")
        return result
    return retraining_drill(stack, kill, **options)


def _wait(predicate, timeout_s: float, poll_s: float = 0.3) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return False


SCENARIOS = (duplicates_and_out_of_order, policy_killed, ranker_killed, redis_restarted, postgres_restarted, worker_killed_while_retraining)
"""In the order ``movierec reliability run`` runs them (the servers' restarts last)."""
