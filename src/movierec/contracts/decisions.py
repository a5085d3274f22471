"""A served decision: what the policy was given and what it chose, logged by the gateway.

The off-policy check of a retrained policy must value the decisions as they were made: among the
ranker's candidates, with the ranker's scores and the recent movies the gateway sent, and with
the propensities the served policy had. Rebuilding them from feedback events cannot do that
(finding 17 of ``reports/performance.md``: the recomputed propensities were 0.6 off the logged
ones), and events exist only for lists someone reacted to, so a list nobody clicked was invisible.
The gateway therefore logs every list the policy chose for a known user, under a ``decision_id``
that the answer carries and that feedback events send back.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DECISION_ID_PATTERN = r"^[0-9a-f]{32}$"


class ServedDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision_id: str = Field(pattern=DECISION_ID_PATTERN)
    user_id: int = Field(ge=1)
    policy_version: str
    served_at: float
    """Unix time at the gateway."""
    recent_movie_ids: list[int] = Field(default_factory=list)
    session_step: int = 0
    candidates: list[int]
    """The ranker's candidates as sent to the policy, in the ranker's order."""
    scores: list[float]
    """The ranker's score of each candidate, as sent."""
    slate: list[int]
    """The movies served, in position order."""
    propensities: list[float]
    """The policy's propensity of each served position."""
