"""The cost floor: a FastAPI endpoint that only parses a small JSON body and returns 20 items.

    uvicorn movierec.benchmarks.bare_app:create_app --factory --workers 2 --port 8090

The serving benchmark starts it next to the stack and divides the stack's throughput by its
throughput on the same machine in the same run, so the ratios say what our own work costs on
top of FastAPI, uvicorn and the HTTP round trip.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

ITEMS = 20


class BareRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    user_id: int = Field(ge=1)
    k: int = Field(default=ITEMS, ge=1, le=100)


class BareItem(BaseModel):
    movie_id: int
    score: float


class BareResponse(BaseModel):
    user_id: int
    items: list[BareItem]


def create_app() -> FastAPI:
    app = FastAPI(title="movierec bare reference endpoint")

    @app.post("/v1/recommendations", response_model=BareResponse)
    async def recommendations(body: BareRequest) -> BareResponse:
        return BareResponse(user_id=body.user_id, items=[BareItem(movie_id=i + 1, score=1.0 - i / ITEMS) for i in range(ITEMS)])

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    return app
