"""Online policy retraining as a Celery task (scheduled by beat, or sent by the feedback service
after every ``retrain_after_events`` new events).

The task reads the feedback recorded since the last published version's events and the gateway's
decision log since the same publish (``movierec.storage.decisions``; without Redis it goes on
with the events alone), hands them to
``movierec.rl.online.retrain_from_events`` (fine-tune, value off-policy, publish only if not worse)
and remembers how far it has read only when it publishes, so a kept candidate's events count again
next time together with newer ones. A publish reads the events to the end but the decision log
only up to its last ``settle_s`` seconds; the next round reads the events again from the first
one naming a decision not read yet (``resume_seq``), so the feedback on those is not lost (they
were valued as skipped lists before), and skips the events naming no decision that the publish
used (``used_seq``). It also remembers how many checks the served version has had
(``checks`` in the state file): each later check demands more confidence (``check_alpha``), so
checking again and again does not publish noise, and it checks again only once the usable slates
have grown by ``EVIDENCE_GROWTH`` (the feedback service asks for a retraining every few hundred
events, seconds apart under load). A file lock keeps two workers from retraining at once; a
re-delivered task simply retrains again (a publish is atomic and versions are never overwritten).

While it runs, the task reports its progress as Celery state ``PROGRESS`` (phase, updates done,
the process and an id of this run), so an operator or a fault drill can see that a retraining is
under way, how far it got, and whether a later run is a re-delivery.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import time
import uuid
from pathlib import Path

import redis
from celery import shared_task

from movierec.rl.artifact import current_version
from movierec.rl.online import FINE_TUNE_EPOCHS, MIN_HELD_OUT_USERS, Progress, retrain_from_events
from movierec.settings import Settings, get_settings
from movierec.storage import FeedbackStore, create_engine_for
from movierec.storage.decisions import START, DecisionLogRead, read_decisions_since
from movierec.tasks.cache import broker_redis, drop_cached_lists_after_publish

log = logging.getLogger(__name__)

RETRAIN_TASK = "movierec.tasks.policy.retrain_policy"
PROGRESS_STATE = "PROGRESS"
STATE_FILE = "retrain_state.json"
EVIDENCE_GROWTH = 1.5
"""The served version is checked again only on at least this many times the slates of its last check."""
MAX_EVENTS = 200_000


def _read_state(policy_dir: Path) -> dict:
    try:
        return json.loads((policy_dir / STATE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"last_seq": 0}


def _write_state(policy_dir: Path, state: dict) -> None:
    tmp = policy_dir / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, policy_dir / STATE_FILE)


def read_events_since(store: FeedbackStore, seq: int, limit: int = MAX_EVENTS) -> list:
    """Every event after ``seq`` in commit order, at most ``limit`` (the newest are kept)."""
    events = []
    while True:
        page = store.events_since(seq, limit=5000)
        if not page:
            break
        events.extend(page)
        seq = page[-1].seq
    return events[-limit:]


def read_decisions(client: redis.Redis | None, key: str, since: str) -> DecisionLogRead:
    """The decision log after stream id ``since``; nothing read when Redis cannot be read."""
    nothing = DecisionLogRead([], since, frozenset())
    if client is None:
        return nothing
    try:
        return read_decisions_since(client, key, since)
    except (redis.RedisError, OSError) as exc:
        log.warning("policy retraining without the decision log: %s", exc)
        return nothing


def resume_seq(events: list, pending_ids: frozenset[str]) -> int | None:
    """Where the next round reads events from after a publish: just before the first event that
    names a decision too young to read now (its feedback must be read again with it; the
    decision log settles, the events are read to the end), else after the last event. None
    without events."""
    pending = [e.seq for e in events if e.decision_id is not None and e.decision_id in pending_ids]
    if pending:
        return min(pending) - 1
    return max((e.seq for e in events), default=None)


def run_retraining(*, min_slates: int = 20, tolerance: float = 0.0, publish: bool = True, epochs: int = FINE_TUNE_EPOCHS,
                   min_held_out_users: int = MIN_HELD_OUT_USERS, settings: Settings | None = None,
                   store: FeedbackStore | None = None, decision_log: redis.Redis | None = None,
                   progress: Progress | None = None) -> dict:
    """One retraining round; returns the outcome as a dict (status, reason, versions, values).
    ``decision_log``: the Redis holding the gateway's decision log (the task passes the broker's)."""
    settings = settings or get_settings()
    policy_dir = settings.models_dir / "policy"
    policy_dir.mkdir(parents=True, exist_ok=True)
    if store is None:
        if not settings.database_url:
            return {"status": "skipped", "reason": "MOVIEREC_DATABASE_URL is not set: no feedback to read"}
        store = FeedbackStore(create_engine_for(settings.database_url, pool_size=1))
    with open(policy_dir / ".retrain.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return {"status": "skipped", "reason": "another retraining is running"}
        state = _read_state(policy_dir)
        source = store.identity()
        # what was remembered of another database (e.g. a benchmark's previous scratch one, or one
        # dropped and created again) does not hold here: its seq would skip this one's first events,
        # its checks counted evidence that is gone. A state written before the identity was kept
        # falls back on the seq being past this database's last.
        if state.get("source", source) != source or int(state.get("last_seq", 0)) > store.last_seq():
            log.warning("policy retraining: the state is of another database (%s, now %s); reading this one from its start",
                        state.get("source"), source)
            state = {k: v for k, v in state.items() if k == "decisions_since"}  # the decision log is in Redis, not there
        since = int(state.get("last_seq", 0))
        # events at or before used_seq that name no decision were used by the last publish; events
        # after since name a decision not read then, or one read then (left out: not read again)
        used = int(state.get("used_seq", since))
        events = [e for e in read_events_since(store, since) if e.decision_id is not None or e.seq > used]
        log_read = read_decisions(decision_log, settings.decision_log_key, str(state.get("decisions_since", START)))
        decisions = log_read.decisions
        # the checks of the served version so far: each one spends part of the error budget
        served = current_version(policy_dir)
        again = state.get("checked_version") == served
        checks = int(state.get("checks", 0)) if again else 0
        # a new check only once the evidence has grown by EVIDENCE_GROWTH: checks every few seconds
        # would spend the error budget on nearly the same data
        needed = max(min_slates, math.ceil(EVIDENCE_GROWTH * int(state.get("checked_slates", 0)))) if again else min_slates
        result = retrain_from_events(events, policy_dir, decisions=decisions, min_slates=needed, tolerance=tolerance, epochs=epochs, publish=publish,
                                      check=checks + 1, min_held_out_users=min_held_out_users, progress=progress)
        if result.status == "skipped" and needed > min_slates and result.slates < needed:
            result.reason += f" ({EVIDENCE_GROWTH:g}x the {state['checked_slates']} of check {checks} of {served})"
        if result.status == "published" and result.last_seq is not None:
            _write_state(policy_dir, {"last_seq": resume_seq(events, log_read.pending_ids), "used_seq": max(used, result.last_seq),
                                      "source": source, "decisions_since": log_read.last_id,
                                      "version": result.version, "checked_version": result.version, "checks": 0})
        elif result.status == "kept" and publish:  # a real check that did not publish (a dry run is not counted)
            # the version the check loaded (a publish by someone else in between starts a new count)
            done = checks + 1 if result.base_version == served else 1
            _write_state(policy_dir, {**state, "last_seq": since, "source": source, "checked_version": result.base_version, "checks": done,
                                      "checked_slates": result.slates})
    out = result.as_dict()
    out["events"] = len(events)
    out["decisions_read"] = len(decisions)
    log.info("policy retraining: %s", json.dumps(out, default=str))
    return out


def retrain_on_broker(**kwargs) -> dict:
    """``run_retraining`` with the broker's Redis as the decision log (what the task and
    ``movierec rl retrain`` run); after a publish every cached list is dropped
    (``drop_cached_lists_after_publish``): they were chosen by the version before."""
    out = run_retraining(decision_log=broker_redis(), **kwargs)
    if out["status"] == "published":
        out["cached_lists_dropped"] = drop_cached_lists_after_publish()
    return out


class TaskProgress:
    """Forwards ``retrain_from_events`` progress to the task's Celery state, at most every
    ``every_s`` seconds while training and at once on a new phase."""

    def __init__(self, task, every_s: float = 0.5):
        self.task = task
        self.every_s = every_s
        self.run = uuid.uuid4().hex[:12]
        self._sent_at = float("-inf")
        self._phase = ""

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase == self._phase and now - self._sent_at < self.every_s:
            return
        if phase != self._phase:
            log.info("policy retraining run %s: %s (%d/%d)", self.run, phase, done, total)
        self._phase, self._sent_at = phase, now
        request = self.task.request
        if request.id is None:  # called directly, not through a broker: no state to report
            return
        self.task.update_state(state=PROGRESS_STATE, meta={
            "phase": phase, "done": done, "total": total, "run": self.run, "pid": os.getpid(), "hostname": request.hostname,
            "redelivered": bool((request.delivery_info or {}).get("redelivered")),
        })


@shared_task(name=RETRAIN_TASK, bind=True)
def retrain_policy(self, min_slates: int = 20, tolerance: float = 0.0, epochs: int = FINE_TUNE_EPOCHS,
                   min_held_out_users: int = MIN_HELD_OUT_USERS) -> dict:
    """Fine-tune the served policy on new feedback; publish it only if held-out slates show a gain
    off-policy, and then drop every cached list (``drop_cached_lists_after_publish``).

    ``epochs``: passes over the new transitions (more: a longer, slower fine-tune);
    ``min_held_out_users``: fewest users whose slates value the candidate."""
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    progress = TaskProgress(self)
    out = retrain_on_broker(min_slates=min_slates, tolerance=tolerance, epochs=epochs, min_held_out_users=min_held_out_users,
                            progress=progress)
    return {**out, "run": progress.run, "pid": os.getpid()}
