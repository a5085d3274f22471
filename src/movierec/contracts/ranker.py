"""The ranker service's contract: top-N candidates over fused item vectors, adding a movie,
reloading a model version."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from movierec.contracts.movies import MovieFilters, MovieId, UserId


class TopNRequest(BaseModel):
    """Exactly one way to name the user: ``user_id`` (known), ``user_vector`` (already folded
    in), or ``liked_movie_ids`` alone (a new user, folded in by the ranker)."""

    model_config = ConfigDict(extra="forbid")

    user_id: UserId | None = None
    user_vector: list[float] | None = Field(default=None, min_length=1, max_length=4096)
    liked_movie_ids: list[MovieId] = Field(
        default_factory=list, max_length=200, validate_default=True,
        description="New user: the movies to fold in. Known user: liked movies beyond the training data (explanations).",
    )
    exclude_movie_ids: list[MovieId] = Field(default_factory=list, max_length=5000)
    filters: MovieFilters = Field(default_factory=MovieFilters)
    k: int = Field(default=100, ge=1, le=1000)

    @field_validator("liked_movie_ids")
    @classmethod
    def _one_user(cls, value: list[int], info: ValidationInfo) -> list[int]:
        if info.data.get("user_id") is None and info.data.get("user_vector") is None and not value:
            raise ValueError("give user_id, user_vector or at least one liked movie id")
        return value


class Because(BaseModel):
    movie_id: int
    similarity: float


class ScoredMovie(BaseModel):
    movie_id: int
    score: float
    attention: dict[str, float] = Field(default_factory=dict, description="The fusion model's attention over this movie's modalities.")
    because: Because | None = Field(default=None, description="The user's liked movie nearest to this one.")


class TopNResponse(BaseModel):
    model_version: str
    items: list[ScoredMovie]
    user_vector: list[float] | None = Field(default=None, description="The folded-in vector of a new user (for the policy).")
    liked_movie_ids: list[int] = Field(default_factory=list, description="The liked movies explanations were drawn from.")


class AddItemRequest(BaseModel):
    """A new movie: its metadata (for filters) and its modality vectors (from the feature-extractor)."""

    model_config = ConfigDict(extra="forbid")

    movie_id: MovieId
    title: str = Field(min_length=1, max_length=300)
    year: int | None = Field(default=None, ge=1870, le=2100)
    genres: list[str] = Field(default_factory=list, max_length=30)
    tags: list[str] = Field(default_factory=list, max_length=100)
    features: dict[str, list[float]] = Field(min_length=1, description="Modality name -> vector.")


class AddItemResponse(BaseModel):
    movie_id: int
    model_version: str
    bias: float
    attention: dict[str, float]
    replaced: bool = Field(description="True when the movie was already served and its vector was replaced.")


class RankerInfo(BaseModel):
    model_version: str | None
    items: int
    dim: int | None
    device: str
    added_movie_ids: list[int]
    artifact_dir: str
