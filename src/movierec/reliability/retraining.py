"""Fault 5, a Celery worker killed while it retrains the policy, as a drill on a ``FaultStack``.

Setup takes seconds: a tiny DQN policy (``movierec.rl.tiny``) is published into the stack's policy
folder when the one served there is not of that world, and slates served by it to simulated users
are stored in the stack's PostgreSQL through ``FeedbackStore``, as the feedback service would.

One retraining task then goes to a worker of its own (``FaultStack.start_worker``, one prefork
process) with enough epochs that training lasts several seconds. Once the task's Celery state
``PROGRESS`` shows training under way, the drill SIGKILLs either the pool process running it (the
worker puts the message back at once: late ack, reject on worker lost) or the whole worker, which
is started again (the message comes back after the broker's visibility timeout).

Throughout, ``PointerWatcher`` reads the ``current`` pointer every 50 ms and checks that every
version it names is a complete folder that loads, and a steady load asks the policy service for
slates: each answer must be a 200 from a published version.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx
import numpy as np
import redis
from celery.result import AsyncResult
from kombu.transport.redis import Channel as RedisChannel

from movierec.reliability.load import SteadyLoad
from movierec.reliability.report import FaultResult
from movierec.reliability.stack import FaultStack
from movierec.rl.artifact import PolicyArtifact, current_version, load_current, load_policy, new_version, publish_policy
from movierec.rl.feedback_log import simulate_feedback_events
from movierec.rl.ranking import PolicyRanker
from movierec.rl.tiny import make_tiny_world, tiny_policy
from movierec.rl.world import World
from movierec.storage import FeedbackStore, create_engine_for
from movierec.tasks.app import RETRAIN_TASK, make_celery
from movierec.tasks.policy import PROGRESS_STATE

DRILL_QUEUE = "retrain-drill"
DRILL_WORKER = "retrain-worker"
KILL_POOL_PROCESS = "pool process"
KILL_WORKER = "whole worker"
RETRAINING_KILLS = (KILL_POOL_PROCESS, KILL_WORKER)
ARTIFACT_FILES = ("policy.json", "tables.npz", "policy.pt")
OPEN_GATE = 1e9
"""Tolerance that publishes whatever the off-policy value: the drill is about the publish path."""


@dataclass
class PointerWatcher:
    """Reads ``policy_dir/current`` every ``poll_s`` on its own thread; records each version it
    names (when first named, whether it loaded) and every read that named an incomplete folder."""

    policy_dir: Path
    clock: Callable[[], float]
    poll_s: float = 0.05
    changes: list[tuple[float, str | None]] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    polls: int = 0

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pointer-watcher", daemon=True)

    @property
    def versions(self) -> list[str | None]:
        return [v for _, v in self.changes]

    def changed_to(self, version: str) -> float | None:
        return next((t for t, v in self.changes if v == version), None)

    def start(self) -> "PointerWatcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            version = current_version(self.policy_dir)
            self.polls += 1
            if not self.changes or version != self.changes[-1][1]:
                self.changes.append((self.clock(), version))
                self._check_loads(version)
            if version is not None:
                missing = [f for f in ARTIFACT_FILES if not (self.policy_dir / version / f).is_file()]
                if missing:
                    self.broken.append(f"{version}: missing {', '.join(missing)}")
            self._stop.wait(self.poll_s)

    def _check_loads(self, version: str | None) -> None:
        if version is None:
            return
        try:
            load_policy(self.policy_dir / version)
        except Exception as exc:  # noqa: BLE001 - any failure to load is what this watcher reports
            self.broken.append(f"{version}: does not load ({type(exc).__name__}: {exc})")


@dataclass
class TaskWatcher:
    """Polls one task's state in the result backend; keeps each distinct (state, run, phase)."""

    result: AsyncResult
    clock: Callable[[], float]
    history: list[tuple[float, str, dict]] = field(default_factory=list)

    def wait(self, predicate: Callable[[str, dict], bool], timeout_s: float, poll_s: float = 0.1) -> tuple[str, dict] | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state, info = self.result.state, self.result.info
            info = info if isinstance(info, dict) else {"error": repr(info)} if info is not None else {}
            seen = (state, info.get("run"), info.get("phase"))
            if not self.history or seen != (self.history[-1][1], self.history[-1][2].get("run"), self.history[-1][2].get("phase")):
                self.history.append((self.clock(), state, dict(info)))
            if predicate(state, info):
                return state, info
            time.sleep(poll_s)
        return None

    def runs(self) -> list[str]:
        return list(dict.fromkeys(info["run"] for _, _, info in self.history if info.get("run")))


def drill_policy(stack: FaultStack, world: World) -> PolicyArtifact:
    """The policy the stack serves, or a tiny one of ``world`` published first when it serves
    none of that world (trained in a few seconds)."""
    policy_dir = stack.settings.models_dir / "policy"
    current = load_current(policy_dir)
    same_world = current is not None and np.array_equal(current.items.movie_ids, world.items.movie_ids) \
        and np.array_equal(current.user_ids, world.simulator.user_ids)
    if not same_world:
        current = tiny_policy(world, version=new_version("drill"))
        publish_policy(current, policy_dir)
    return current


def store_logged_slates(stack: FaultStack, world: World, policy: PolicyArtifact, users: int, seed: int) -> int:
    """Slates the policy serves to ``users`` simulated users, stored as feedback events; returns how many events."""
    events = simulate_feedback_events(world, PolicyRanker(policy), np.arange(users), seed=seed, id_prefix=f"drill-{uuid.uuid4().hex[:8]}")
    store = FeedbackStore(create_engine_for(stack.database_url, pool_size=1))
    try:
        for event in events:
            store.record(event)
    finally:
        store.engine.dispose()
    return len(events)


def _rank_request_factory(world: World, top_n: int):
    def make(n: int) -> tuple[str, str, dict]:
        u = n % world.n_users
        rows = world.candidate_rows[u][:top_n]
        candidates = [{"movie_id": int(m), "score": float(s)} for m, s in zip(world.items.movie_ids[rows], world.candidate_scores[u][:top_n])]
        return "POST", "/v1/rank", {"json": {"user_id": int(world.simulator.user_ids[u]), "candidates": candidates, "k": 5}}
    return make


def wait_served(policy_url: str, version: str, timeout_s: float) -> float | None:
    """Seconds until the policy service says it serves ``version`` (None: not within ``timeout_s``)."""
    started = time.monotonic()
    with httpx.Client(base_url=policy_url, timeout=5.0) as client:
        while time.monotonic() - started < timeout_s:
            try:
                if client.get("/v1/policy").json().get("version") == version:
                    return time.monotonic() - started
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
    return None


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _temporary_folders(policy_dir: Path) -> list[str]:
    return sorted(p.name for p in policy_dir.glob(".*.tmp-*") if p.is_dir())


@dataclass
class DrillRun:
    """What happened to the one retraining task of a drill, by the load's clock."""

    kill: str
    base: str
    killed: dict | None = None
    """The task's progress when it was killed."""
    killed_at: float | None = None
    pointer_at_kill: str | None = None
    victim_ok: bool = False
    rerun: dict | None = None
    rerun_at: float | None = None
    final: tuple[str, dict] | None = None
    task: TaskWatcher | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def published(self) -> str | None:
        return self.final[1].get("version") if self.final is not None and self.final[0] == "SUCCESS" else None


def _interrupt(stack: FaultStack, worker, run: DrillRun, clock: Callable[[], float], timeout_s: float) -> None:
    """Wait until training is under way, kill, then follow the task until it ends."""
    killed = run.task.wait(lambda s, i: s == PROGRESS_STATE and i.get("phase") == "training" and i.get("done", 0) > 0, timeout_s)
    if killed is None:
        return
    run.killed, run.killed_at = killed[1], clock()
    run.pointer_at_kill = current_version(stack.settings.models_dir / "policy")
    if run.kill == KILL_POOL_PROCESS:
        pid = int(run.killed["pid"])
        run.victim_ok = pid != worker.proc.pid and _parent_pid(pid) == worker.proc.pid
        if run.victim_ok:
            os.kill(pid, signal.SIGKILL)
    else:
        stack.kill(DRILL_WORKER)
        run.victim_ok = worker.proc.returncode == -signal.SIGKILL
        stack.restart(worker, wait_ready=False)
        run.notes.append(f"the restarted worker answered a ping {stack.wait_worker(DRILL_WORKER, timeout_s):.1f} s after its restart")
    rerun = run.task.wait(lambda s, i: i.get("run") not in (None, run.killed["run"]), timeout_s)
    if rerun is not None:
        run.rerun, run.rerun_at = rerun[1], clock()
        run.final = run.task.wait(lambda s, i: s in ("SUCCESS", "FAILURE"), timeout_s)
    else:
        run.notes.append(f"no new run within {timeout_s:.0f} s of the kill; the broker then held: {broker_state(stack.redis_url)}")


def broker_state(redis_url: str) -> str:
    """Where the drill's message can be, for a drill whose task never ran again: messages delivered
    and not acknowledged (with their delivery ages), the drill queue's length, the sweep lock (under
    the keys kombu's Redis transport uses)."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5.0)
    try:
        now = time.time()
        ages = [f"{now - score:.0f}" for _, score in client.zrange(RedisChannel.unacked_index_key, 0, -1, withscores=True)]
        lock_ttl = client.pttl(RedisChannel.unacked_mutex_key)
        return (f"{client.hlen(RedisChannel.unacked_key)} unacknowledged (delivered {', '.join(ages) or '-'} s ago), {client.llen(DRILL_QUEUE)} waiting in "
                f"{DRILL_QUEUE}, sweep lock {'free' if lock_ttl < 0 else f'held for {lock_ttl / 1000:.1f} s more'}")
    except redis.RedisError as exc:
        return f"unreadable ({type(exc).__name__}: {exc})"
    finally:
        client.close()


def _checks(run: DrillRun, watcher: PointerWatcher, summary) -> dict[str, bool]:
    killed, published = run.killed or {}, run.published
    answered = set(summary.labels())
    return {
        "the kill landed mid-run (training under way, nothing published yet)": run.killed is not None
        and 0 < killed.get("done", 0) < killed.get("total", 0) and run.pointer_at_kill == run.base
        and all(v == run.base for t, v in watcher.changes if t <= run.killed_at),
        ("the killed process was the pool process running the task" if run.kill == KILL_POOL_PROCESS else
         "the whole worker died (SIGKILL)"): run.victim_ok,
        "the task ran again after the kill (a new run of the same task)": run.rerun is not None,
        "the new run finished and published": published is not None and run.final[1].get("status") == "published"
        and run.final[1].get("run") == run.rerun.get("run"),
        "the served version changed exactly once, to the new run's version": published is not None and watcher.versions == [run.base, published],
        "no partial or unloadable folder was ever pointed to": not watcher.broken and watcher.polls > 10,
        "the policy service answered every request with a published version (zero 5xx)": summary.requests > 0
        and set(summary.statuses()) == {"200"} and answered <= {run.base, published},
        "the policy service serves the new version afterwards": published is not None and summary.requests > 0
        and summary.outcomes[-1].label == published,
    }


def _notes(run: DrillRun, watcher: PointerWatcher, summary, policy_dir: Path) -> list[str]:
    notes = [f"no answer at {o.t:.1f} s ({o.error})" for o in summary.outcomes if o.status is None][:5]
    if run.killed is not None:
        k = run.killed
        notes.append(f"killed at {run.killed_at:.1f} s while training ({k['done']}/{k['total']} updates, run {k['run']}, pid {k['pid']})")
    notes += run.notes
    if run.rerun is not None:
        notes.append(f"the task ran again {run.rerun_at - run.killed_at:.1f} s after the kill (run {run.rerun['run']}, pid "
                     f"{run.rerun['pid']}, marked redelivered: {run.rerun.get('redelivered')})")
    if run.final is not None:
        state, info = run.final
        notes.append(f"it ended {state}: {info.get('status')} {run.published or ''} ({info.get('reason') or info.get('error')})")
    notes.append(f"the pointer named {' -> '.join(str(v) for v in watcher.versions)} over {watcher.polls} reads every 50 ms"
                 + (f"; broken: {'; '.join(watcher.broken[:3])}" if watcher.broken else ""))
    notes.append(f"temporary folders left by killed runs (never pointed to): {len(_temporary_folders(policy_dir))}")
    if run.task is not None:
        notes.append("the task's states (seconds since the load started): "
                     + ", ".join(f"{t:.1f} {state} {i.get('phase', '')} {i.get('run', '')}".strip() for t, state, i in run.task.history))
    notes.append(f"quality gate opened (tolerance {OPEN_GATE:g}): the drill is about the publish path, not about the new policy's value")
    return notes


def retraining_drill(stack: FaultStack, kill: str = KILL_POOL_PROCESS, *, epochs: int = 300, visibility_timeout_s: float = 30.0,
                     rate_per_s: float = 5.0, users: int = 12, timeout_s: float = 180.0) -> FaultResult:
    """SIGKILL the pool process running a retraining task, or its whole worker, mid-training: the
    task runs again and publishes once, atomically; the policy service serves a valid version throughout."""
    if kill not in RETRAINING_KILLS:
        raise ValueError(f"kill must be one of {RETRAINING_KILLS}, not {kill!r}")
    world = make_tiny_world(iterations=40)
    policy_dir = stack.settings.models_dir / "policy"
    base = drill_policy(stack, world)
    logged = store_logged_slates(stack, world, base, users, seed=int(time.time()) % 10_000)
    worker = stack.start_worker(DRILL_WORKER, DRILL_QUEUE, visibility_timeout_s=visibility_timeout_s)
    run = DrillRun(kill, base.version)
    if wait_served(stack.url("policy"), base.version, timeout_s=60) is None:
        run.notes.append(f"the policy service did not serve the base version {base.version} within 60 s of its publication")
    load = SteadyLoad(stack.url("policy"), _rank_request_factory(world, base.config.dqn.top_n), rate_per_s=rate_per_s,
                      max_s=3 * timeout_s).start()
    watcher = PointerWatcher(policy_dir, load.now).start()
    app = make_celery(stack.redis_url)
    try:
        time.sleep(1.0)
        sent = app.send_task(RETRAIN_TASK, kwargs={"min_slates": 20, "tolerance": OPEN_GATE, "min_held_out_users": 1, "epochs": epochs},
                             queue=DRILL_QUEUE)
        run.task = TaskWatcher(AsyncResult(sent.id, app=app), load.now)
        _interrupt(stack, worker, run, load.now, timeout_s)
        if run.published:  # the service checks the pointer every couple of seconds
            load.wait_until(lambda s: bool(s.outcomes) and s.outcomes[-1].label == run.published, timeout_s=15)
        time.sleep(1.0)
    finally:
        summary = load.stop()
        watcher.stop()
        stack.terminate(DRILL_WORKER)
    how = ("SIGKILL of the pool process running a policy retraining task, mid-training" if kill == KILL_POOL_PROCESS else
           "SIGKILL of the whole Celery worker (parent and pool process) mid-training, restarted at once; broker visibility "
           f"timeout {visibility_timeout_s:g} s")
    result = FaultResult(f"worker killed while retraining ({kill})", how,
                         f"{rate_per_s:g} rank requests/s to the policy service, {summary.duration_s:.0f} s; retraining "
                         f"{epochs} epochs over {logged} logged events").count(summary)
    result.statuses.update({f"policy_version={k}": v for k, v in summary.labels().items()})
    published_at = watcher.changed_to(run.published) if run.published else None
    if run.killed_at is not None and published_at is not None:
        result.recovery_s = round(published_at - run.killed_at, 2)
    result.checks = _checks(run, watcher, summary)
    result.notes += _notes(run, watcher, summary, policy_dir)
    return result
