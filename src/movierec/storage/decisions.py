"""The decision log: every list the policy chose for a known user, as a capped Redis stream.

The gateway appends a ``ServedDecision`` (``movierec.contracts.decisions``) to the stream named by
the ``MOVIEREC_DECISION_LOG_KEY`` setting in the same Redis round trip as its cache write, so
logging costs the miss path no extra hop. The retraining task reads the decisions made since the
last published version (``read_decisions_since``, by stream id) and joins them with the feedback
events that name them; the last ``settle_s`` seconds are left for the next round, since their
feedback may not have arrived yet (read now, they would count as skipped lists). The read also
names those younger decisions (``DecisionLogRead.pending_ids``), so that the feedback already
given on them is read again with them next round rather than passed over.

The stream keeps about ``max_len`` decisions (oldest trimmed; a decision is ~2 KB); a decision
trimmed before the retraining reads it is simply not valued. It lives as long as Redis keeps its
data: a Redis without persistence loses the log on restart, which costs the next check its
evidence, not correctness. Deleting a user deletes their decisions (the gateway's
``RecommendationCache.forget_user_decisions``).
"""

from __future__ import annotations

import json
import logging
from typing import NamedTuple

import redis

from movierec.contracts.decisions import ServedDecision

log = logging.getLogger(__name__)

DEFAULT_MAX_LEN = 50_000
FIELD = "d"
USER_FIELD = "u"
"""Each entry also names its user, so deleting a user's data finds their decisions without parsing them."""
START = "0-0"
"""The stream id before every decision."""
SETTLE_S = 30.0
"""Decisions younger than this are read by a later round."""


def decision_entry(decision: ServedDecision) -> dict[str, str]:
    """The stream entry's fields for ``decision``."""
    return {USER_FIELD: str(decision.user_id), FIELD: decision.model_dump_json()}


def user_entry_ids(entries: list, user_id: int) -> list:
    """Ids of the stream ``entries`` (as XRANGE returns them) that are ``user_id``'s decisions."""
    user = str(user_id).encode()
    return [entry_id for entry_id, fields in entries
            if (fields.get(USER_FIELD.encode()) or fields.get(USER_FIELD, "").encode()) == user]


class DecisionLogRead(NamedTuple):
    decisions: list[ServedDecision]
    """The settled decisions after the id read from, oldest first."""
    last_id: str
    """The id of the last one read (the id read from when there is none)."""
    pending_ids: frozenset[str]
    """The ``decision_id`` of every decision after ``last_id``: too young to read now, read next
    time from ``last_id`` on."""


def read_decisions_since(client: redis.Redis, key: str, since: str = START, *, settle_s: float = SETTLE_S,
                         page: int = 2000) -> DecisionLogRead:
    """Every decision in stream ``key`` after stream id ``since`` and at least ``settle_s`` old
    (by the Redis server's clock, which stamps the ids), oldest first, the id of the last one
    read (``since`` when there is none) and the ids of the younger ones. An entry that does not
    parse is logged and skipped. A ``since`` past the stream's newest entry (a Redis emptied or
    replaced since) reads it all."""
    seconds, micros = client.time()
    until = f"{int((seconds + micros / 1e6 - settle_s) * 1000)}"
    newest = client.xrevrange(key, count=1)
    if newest and _stream_id(since) > _stream_id(newest[0][0]):
        log.warning("decision log: remembered id %s is past the stream's newest; reading it all", since)
        since = START
    out: list[ServedDecision] = []
    last = since
    while True:
        entries = client.xrange(key, min=f"({last}", max=until, count=page)
        if not entries:
            return DecisionLogRead(out, last, _ids_after(client, key, last, page))
        for entry_id, fields in entries:
            last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            raw = fields.get(FIELD.encode(), fields.get(FIELD))
            try:
                out.append(ServedDecision.model_validate_json(raw))
            except (ValueError, TypeError) as exc:
                log.warning("decision log entry %s skipped: %s", last, exc)


def _ids_after(client: redis.Redis, key: str, last: str, page: int) -> frozenset[str]:
    """The ``decision_id`` of every entry after stream id ``last`` (those that do not parse left out)."""
    ids: set[str] = set()
    while True:
        entries = client.xrange(key, min=f"({last}", count=page)
        if not entries:
            return frozenset(ids)
        for entry_id, fields in entries:
            last = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            try:
                ids.add(str(json.loads(fields.get(FIELD.encode(), fields.get(FIELD)))["decision_id"]))
            except (ValueError, TypeError, KeyError):
                pass


def _stream_id(value: str | bytes) -> tuple[int, int]:
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)
