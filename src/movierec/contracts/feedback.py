"""Feedback events: what a user did with a served slate.

One event per action. ``event_id`` is chosen by the client, so a retried request is stored once.
``slate``/``position``/``propensity``/``policy_version`` say what was served and with what
probability, so policies can be valued off-policy from the log. ``decision_id`` is the list's
``decision_id`` as the recommendations answer gave it: the retraining then values the decision as
the policy made it (``movierec.contracts.decisions``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from movierec.contracts.decisions import DECISION_ID_PATTERN

FeedbackKind = Literal["impression", "click", "watch", "rating"]
MAX_ID = 2**31 - 1
"""Ids are stored as 32-bit integers; larger ones are refused at the edge, not by the database."""
MAX_WATCH_SECONDS = 6 * 3600


class FeedbackEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_\-:.]+$")
    user_id: int = Field(ge=1, le=MAX_ID)
    movie_id: int = Field(ge=1, le=MAX_ID)
    kind: FeedbackKind
    watch_seconds: float | None = Field(default=None, ge=0, le=MAX_WATCH_SECONDS)
    rating: float | None = Field(default=None, ge=0.5, le=5.0, multiple_of=0.5)
    slate: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(default_factory=list, max_length=200)
    position: int | None = Field(default=None, ge=0, le=199)
    propensity: float | None = Field(default=None, gt=0, le=1)
    policy_version: str | None = Field(default=None, max_length=64)
    decision_id: str | None = Field(default=None, pattern=DECISION_ID_PATTERN, description="The served list's decision_id, from the recommendations answer.")
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
