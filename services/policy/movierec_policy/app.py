"""Policy service: re-ranks the ranker's candidates into a slate with the published DQN.

    uvicorn movierec_policy.app:create_app --factory --port 8002

``POST /v1/rank`` takes a ``RankRequest`` and answers a ``RankResponse`` (movies in slate order
with Q-values, the propensity of each position, and the policy version). With no published policy
it passes the ranker's order through as version ``greedy``. Published versions are picked up
without a restart (see ``PolicyHolder``).
"""

from __future__ import annotations

import asyncio

import numpy as np
import torch
from fastapi import FastAPI, Response
from prometheus_client import Counter

from movierec.contracts.policy import RankedItem, RankRequest, RankResponse
from movierec.rl.ranking import RankInputError, greedy_order
from movierec_policy.holder import PolicyHolder
from movierec_policy.settings import PolicySettings
from movierec_service import ServiceError, create_service_app
from movierec_service.heap import freeze_loaded_objects


class InvalidRankRequest(ServiceError):
    status = 422
    code = "invalid_rank_request"


def create_app(settings: PolicySettings | None = None) -> FastAPI:
    settings = settings or PolicySettings()
    torch.set_num_threads(settings.torch_threads)
    holder_ref: dict[str, PolicyHolder] = {}

    async def policy_ready() -> str | None:
        holder = holder_ref["holder"]
        holder.current()
        if holder.ranker is None and holder.last_error:
            return holder.last_error
        return None

    app = create_service_app("policy", readiness=[policy_ready], log_level=settings.log_level)
    registry = app.state.metrics_registry
    holder = PolicyHolder(settings.resolved_policy_dir(), settings.reload_interval_s, registry)
    holder_ref["holder"] = holder
    app.state.holder = holder
    served = Counter("policy_slates_total", "Slates served", ["mode"], registry=registry)
    rng = np.random.default_rng(settings.seed)

    @app.post("/v1/rank", response_model=RankResponse,
              responses={404: {"description": "Unknown user_id (send user_vector)"}, 422: {"description": "Invalid request: the message names the field"}})
    async def rank(request: RankRequest) -> Response:
        """Order the candidates into a slate of at most ``k`` movies."""
        # the pointer check (file reads, now and then loading a new version) in a thread; the
        # ranking itself (about a millisecond) on the event loop, without a thread hand-off
        ranker = await asyncio.to_thread(holder.current) if holder.check_due() else holder.ranker
        ids = [c.movie_id for c in request.candidates]
        scores = [c.score for c in request.candidates]
        try:
            if ranker is None:
                ranked = greedy_order(ids, scores, request.k)
                version = "greedy"
            else:
                ranked = ranker.rank(user_id=request.user_id, user_vector=request.user_vector, recent_movie_ids=request.recent_movie_ids,
                                     movie_ids=ids, scores=scores, k=request.k, session_step=request.session_step, rng=rng)
                version = ranker.version
        except RankInputError as exc:
            code = "unknown_user" if exc.status == 404 else "invalid_rank_request"
            raise InvalidRankRequest(f"{exc.field}: {exc}", status=exc.status, code=code) from None
        served.labels("greedy" if ranker is None else "dqn").inc()
        answer = RankResponse(items=[RankedItem(movie_id=r.movie_id, q_value=r.q_value, propensity=r.propensity) for r in ranked],
                              policy_version=version)
        # serialised once in pydantic-core, not validated again against response_model (on every miss)
        return Response(content=answer.model_dump_json(), media_type="application/json")

    app.router.on_startup.append(freeze_loaded_objects)  # torch and the app: off the collector's rounds

    @app.get("/v1/policy")
    def policy() -> dict:
        """The served policy version and the metadata it was published with."""
        ranker = holder.current()
        if ranker is None:
            return {"version": "greedy", "metadata": {}, "last_error": holder.last_error}
        return {"version": ranker.version, "metadata": ranker.artifact.metadata, "last_error": holder.last_error}

    return app
