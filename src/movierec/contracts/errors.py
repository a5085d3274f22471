"""The error body every service answers with (``movierec_service`` writes it), for OpenAPI
documents and clients."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    field: str
    message: str


class Error(BaseModel):
    code: str = Field(description="Machine-readable: not_found, invalid_request, model_unavailable, ...")
    message: str = Field(description="What is wrong, naming the field or id")
    request_id: str
    details: list[ErrorDetail] | None = None


class ErrorResponse(BaseModel):
    error: Error


def error_responses(*statuses: int) -> dict[int, dict]:
    """``responses=`` for a FastAPI route: the listed statuses answer an ``ErrorResponse``."""
    described = {
        400: "Body could not be parsed", 401: "Credential missing", 403: "Credential refused", 404: "Unknown id (named in the message)",
        409: "Conflict", 413: "Upload too large", 422: "Invalid field (named in the message)", 503: "A dependency is unavailable: retry",
    }
    return {s: {"model": ErrorResponse, "description": described.get(s, "Error")} for s in statuses}
