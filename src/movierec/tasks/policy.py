"""Online policy retraining as a Celery task (scheduled by beat, or sent by the feedback service
after every ``retrain_after_events`` new events).

The task reads the feedback recorded since the last published version's events, hands them to
``movierec.rl.online.retrain_from_events`` (fine-tune, value off-policy, publish only if not worse)
and remembers how far it has read only when it publishes, so a kept candidate's events count again
next time together with newer ones. A file lock keeps two workers from retraining at once; a
re-delivered task simply retrains again (a publish is atomic and versions are never overwritten).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path

from celery import shared_task

from movierec.rl.online import retrain_from_events
from movierec.settings import Settings, get_settings
from movierec.storage import FeedbackStore, create_engine_for

log = logging.getLogger(__name__)

RETRAIN_TASK = "movierec.tasks.policy.retrain_policy"
STATE_FILE = "retrain_state.json"
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


def run_retraining(*, min_slates: int = 20, tolerance: float = 0.0, publish: bool = True, epochs: int = 20,
                   settings: Settings | None = None, store: FeedbackStore | None = None) -> dict:
    """One retraining round; returns the outcome as a dict (status, reason, versions, values)."""
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
        events = read_events_since(store, int(state.get("last_seq", 0)))
        result = retrain_from_events(events, policy_dir, min_slates=min_slates, tolerance=tolerance, epochs=epochs, publish=publish)
        if result.status == "published" and result.last_seq is not None:
            _write_state(policy_dir, {"last_seq": result.last_seq, "version": result.version})
    out = result.as_dict()
    out["events"] = len(events)
    log.info("policy retraining: %s", json.dumps(out, default=str))
    return out


@shared_task(name=RETRAIN_TASK)
def retrain_policy(min_slates: int = 20, tolerance: float = 0.0) -> dict:
    """Fine-tune the served policy on new feedback; publish it if it is not worse off-policy."""
    return run_retraining(min_slates=min_slates, tolerance=tolerance)
