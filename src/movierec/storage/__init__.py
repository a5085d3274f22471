"""PostgreSQL storage: feedback events stored exactly once, read back in commit order.

``FeedbackStore`` is the only way in: ``record`` (idempotent on ``event_id``), ``events_since``
(for consumers such as online retraining), ``events_for_user`` and ``delete_user``.
``migrate(url)`` brings a database to the latest Alembic revision.
"""

from movierec.storage.database import create_engine_for, migrate, normalize_database_url
from movierec.storage.feedback import EventConflict, FeedbackStore, StoredFeedbackEvent

__all__ = [
    "EventConflict",
    "FeedbackStore",
    "StoredFeedbackEvent",
    "create_engine_for",
    "migrate",
    "normalize_database_url",
]
