"""Errors of the serving logic. Services map them to HTTP once:

- ``UnknownUser``, ``UnknownMovie`` -> 404 naming the id
- ``FilterError``, ``InvalidInput`` -> 422 naming the field
- ``ModelUnavailable`` -> 503 (nothing loaded yet, or the loaded model cannot do this)
"""

from __future__ import annotations

from movierec.serving.filters import FilterError


class ServingError(Exception):
    """Root of the serving errors."""


class UnknownUser(ServingError):
    def __init__(self, user_id: int):
        super().__init__(f"user {user_id} not found")
        self.user_id = user_id


class UnknownMovie(ServingError):
    def __init__(self, movie_ids: list[int], field: str = "movie_id"):
        ids = ", ".join(str(m) for m in movie_ids[:10])
        super().__init__(f"movie{'s' if len(movie_ids) > 1 else ''} {ids} not found ({field})")
        self.movie_ids = movie_ids
        self.field = field


class InvalidInput(ServingError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ModelUnavailable(ServingError):
    """No model is loaded, or the loaded one cannot serve this request."""


__all__ = ["ServingError", "UnknownUser", "UnknownMovie", "InvalidInput", "ModelUnavailable", "FilterError"]
