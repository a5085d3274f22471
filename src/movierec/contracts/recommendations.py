"""The gateway's public recommendation contract."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from movierec.contracts.movies import MovieFilters, MovieId, UserId


class RecommendationRequest(BaseModel):
    """A known ``user_id``, or ``liked_movie_ids`` for a new user (not both)."""

    model_config = ConfigDict(extra="forbid")

    user_id: UserId | None = None
    liked_movie_ids: list[MovieId] = Field(default_factory=list, max_length=100, validate_default=True)
    exclude_movie_ids: list[MovieId] = Field(default_factory=list, max_length=1000, description="Also leave these out (e.g. watched by a new user).")
    k: int = Field(default=10, ge=1, le=100)
    filters: MovieFilters = Field(default_factory=MovieFilters)

    @field_validator("liked_movie_ids")
    @classmethod
    def _user_or_likes(cls, value: list[int], info: ValidationInfo) -> list[int]:
        has_user = info.data.get("user_id") is not None
        if has_user and value:
            raise ValueError("give user_id or liked_movie_ids, not both")
        if not has_user and not value and "user_id" in info.data:
            raise ValueError("give user_id (a known user) or liked_movie_ids (a new user)")
        return list(dict.fromkeys(value))


class ModalityWeight(BaseModel):
    name: str
    weight: float


class BecauseYouLiked(BaseModel):
    movie_id: int
    title: str
    similarity: float


class Explanation(BaseModel):
    text: str
    modalities: list[ModalityWeight] = Field(default_factory=list, description="Modalities that drove the match, strongest first.")
    because_you_liked: BecauseYouLiked | None = None
    shared_genres: list[str] = Field(default_factory=list)
    shared_tags: list[str] = Field(default_factory=list)


class RecommendedMovie(BaseModel):
    movie_id: int
    title: str
    year: int | None = None
    genres: list[str] = Field(default_factory=list)
    score: float
    average_rating: float | None = None
    poster_url: str | None = None
    propensity: float | None = Field(default=None, description="Probability the policy served this item here (log it with feedback).")
    explanation: Explanation


class RecommendationResponse(BaseModel):
    user_id: int | None
    items: list[RecommendedMovie]
    policy_version: str
    model_version: str | None
    decision_id: str | None = Field(default=None, description="Send it back with feedback about these items (set when the policy chose the list for a known user).")
    degraded: bool = False
    degraded_reason: str | None = None
    cached: bool = False
