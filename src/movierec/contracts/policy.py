"""The policy service's contract: re-rank the ranker's candidates into a slate."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RankCandidate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    movie_id: int = Field(ge=1)
    score: float
    """The ranker's (myopic) score for this user."""


class RankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: int | None = Field(default=None, ge=1, description="Known user; omit for a new user and send user_vector.")
    user_vector: list[float] | None = Field(default=None, max_length=4096, description="Folded-in vector of a new user.")
    recent_movie_ids: list[int] = Field(default_factory=list, max_length=5, description="Last movies watched, newest last.")
    candidates: list[RankCandidate] = Field(min_length=1, max_length=1000)
    k: int = Field(default=20, ge=1, le=100)
    session_step: int = Field(default=0, ge=0, le=10_000)


class RankedItem(BaseModel):
    movie_id: int
    q_value: float
    propensity: float = Field(gt=0, le=1)


class RankResponse(BaseModel):
    items: list[RankedItem]
    policy_version: str
