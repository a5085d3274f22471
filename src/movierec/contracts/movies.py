"""Movies as the public API shows them, and the filters every top-N request can carry."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

MAX_ID = 2**31 - 1
MovieId = Annotated[int, Field(ge=1, le=MAX_ID)]
UserId = Annotated[int, Field(ge=1, le=MAX_ID)]


class MovieFilters(BaseModel):
    """What a recommendation list may contain. Genres are checked against the catalog by the
    service (a genre the catalog does not know is a 422 naming the field)."""

    model_config = ConfigDict(extra="forbid")

    genres_include: list[str] = Field(default_factory=list, max_length=30, description="Keep movies with at least one of these genres.")
    genres_exclude: list[str] = Field(default_factory=list, max_length=30, description="Drop movies with any of these genres.")
    year_min: int | None = Field(default=None, ge=1870, le=2100)
    year_max: int | None = Field(default=None, ge=1870, le=2100)
    min_avg_rating: float | None = Field(default=None, ge=0.5, le=5.0, description="Minimum mean rating over all users.")
    exclude_watched: bool = Field(default=True, description="Drop movies the user has already rated or watched.")

    @field_validator("year_max")
    @classmethod
    def _year_range(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("year_min")
        if value is not None and low is not None and value < low:
            raise ValueError(f"year_max ({value}) is before year_min ({low})")
        return value


class MoviePublic(BaseModel):
    movie_id: int
    title: str
    year: int | None = None
    genres: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    average_rating: float | None = None
    rating_count: int = 0
    plot: str | None = None
    poster_url: str | None = None


class MovieSearchResponse(BaseModel):
    query: str
    items: list[MoviePublic]


class UserPublic(BaseModel):
    user_id: int
    rating_count: int
    liked: list[MoviePublic] = Field(description="The user's highest-rated movies, best first.")
