"""The key format of the per-user recommendation cache in Redis, in one place: the gateway writes
and reads these keys (``movierec_gateway.cache``), the Celery tasks delete them
(``movierec.tasks.cache``) and the closed-loop benchmark clears them between runs.

- ``recs:{user_id}:{request_hash}``: the fresh list for one (k, filters, excludes) combination;
- ``recs:{user_id}:history``: the user's feedback events as the feedback service answered them;
  under the user's ``recs:`` prefix, so every invalidation of their lists drops it too;
- ``recs_stale:{user_id}:{request_hash}``: the same list kept longer and NOT removed by
  invalidation: read only while the ranker is down, deleted with the user's data.
"""

from __future__ import annotations

RECS_KEY_PREFIX = "recs:"
STALE_KEY_PREFIX = "recs_stale:"
ALL_LISTS = f"{RECS_KEY_PREFIX}*"
"""Every user's fresh lists and cached histories (not the stale copies)."""
ALL_STALE_LISTS = f"{STALE_KEY_PREFIX}*"


def list_key(user_id: int, digest: str) -> str:
    return f"{RECS_KEY_PREFIX}{user_id}:{digest}"


def stale_key(user_id: int, digest: str) -> str:
    return f"{STALE_KEY_PREFIX}{user_id}:{digest}"


def history_key(user_id: int) -> str:
    return f"{RECS_KEY_PREFIX}{user_id}:history"


def user_lists(user_id: int) -> str:
    """Glob of the user's fresh lists and cached history."""
    return f"{RECS_KEY_PREFIX}{user_id}:*"


def user_stale_lists(user_id: int) -> str:
    """Glob of the user's stale copies."""
    return f"{STALE_KEY_PREFIX}{user_id}:*"
