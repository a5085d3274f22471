"""The gateway: the only public API, and the web page.

    uvicorn movierec_gateway.app:create_app --factory --port 8000

Routes: ``POST /v1/recommendations``, ``GET /v1/movies?q=``, ``GET /v1/movies/{id}``, ``GET
/v1/movies/{id}/poster``, ``GET /v1/genres``, ``GET /v1/users/{id}``, ``POST /v1/feedback``,
``DELETE /v1/users/{id}``, ``POST /v1/admin/movies``; the page at ``/``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware import Middleware

from movierec.clients import FeatureExtractorClient, FeedbackClient, NotFound, PolicyClient, RankerPool, ServiceRejected, ServiceUnavailable
from movierec.clients.keepalive import KeepAliveTransport
from movierec.contracts.errors import error_responses
from movierec.contracts.feedback import FeedbackEvent
from movierec.contracts.movies import MAX_ID, MoviePublic, MovieSearchResponse, UserPublic
from movierec.contracts.recommendations import RecommendationRequest, RecommendationResponse
from movierec.data import load_dataset
from movierec.security import Principal, SecuritySettings, get_security_settings
from movierec.settings import get_settings
from movierec.security.dependencies import AccessControl
from movierec.serving.catalog import CatalogMovie, MovieCatalog, poster_file
from movierec_gateway.admin import AdminDeps, admin_router
from movierec_gateway.cache import CacheLookup, RateCheck, RecommendationCache
from movierec_gateway.cache_hit import LOOKUP_STATE_KEY, CacheHitShortcut
from movierec_gateway.recommend import CachedAnswer, Recommendations
from movierec_gateway.settings import GatewaySettings
from movierec_service import ServiceError, create_service_app
from movierec_service.heap import freeze_loaded_objects
from movierec_service.logs import request_id_var

STATIC_DIR = Path(__file__).parent / "static"
MovieId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="Movie id")]
UserId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="User id")]


def create_app(settings: GatewaySettings | None = None, *, catalog: MovieCatalog | None = None):
    """The gateway app. ``catalog`` is for tests (default: the configured dataset)."""
    settings = settings or GatewaySettings()
    state: dict = {"catalog": catalog}

    async def catalog_loaded() -> str | None:
        return None if state["catalog"] is not None else "catalog not loaded yet"

    async def ranker_ready() -> str | None:
        problem = await rankers.ready()
        return f"no ranker replica ready: {problem}" if problem else None

    async def redis_ready() -> str | None:
        return await cache.ping()

    async def cached_lookup(request: RecommendationRequest, scope) -> CacheLookup | None:
        """The cache-hit shortcut's round trip, for a known user whom ``access.reader`` lets read."""
        recommender = state.get("recommendations")
        if recommender is None or not state["catalog"].knows_user(int(request.user_id)):
            return None
        client = access.reader_client_id(Request(scope))
        if client is None:
            return None
        return await recommender.lookup(request, RateCheck(access.limiter, client) if access.limiter is not None else None)

    shortcut = Middleware(CacheHitShortcut, lookup=cached_lookup, on_hit=lambda: state["recommendations"].count_cache_hit())
    app = create_service_app("gateway", readiness=[catalog_loaded, redis_ready, ranker_ready], log_level=settings.log_level,
                             inner_middleware=[shortcut])
    registry = app.state.metrics_registry
    security = get_security_settings()  # refuses placeholder secrets outside development
    if settings.admin_api_key:  # MOVIEREC_GATEWAY_ADMIN_API_KEY: this gateway's admin credential
        security = SecuritySettings(**{**security.model_dump(), "admin_api_key": settings.admin_api_key})
    access = AccessControl(security, redis_url=settings.resolved_redis_url(), registry=registry, redis_timeout_s=settings.redis_timeout_s)

    # --- recommendations ----------------------------------------------------------------------
    # declared before access.install: it checks its rate limit itself, in the same Redis round
    # trip as its cache read (tests/serving/test_gateway.py checks that it answers 429). A cache
    # hit is answered before this route by the CacheHitShortcut (movierec_gateway.cache_hit).

    @app.post("/v1/recommendations", response_model=RecommendationResponse, tags=["recommendations"], responses=error_responses(400, 401, 404, 422, 503),
              dependencies=[Depends(access.reader)])
    async def recommendations(body: RecommendationRequest, request: Request) -> Response:
        """Top-k movies for a known ``user_id`` or a new user's ``liked_movie_ids``, with filters,
        scores, posters, the policy version and an explanation per movie."""
        the_catalog()
        prefetched = getattr(request.state, LOOKUP_STATE_KEY, None)  # the cache-hit shortcut's round trip, on a miss
        rate = RateCheck(access.limiter, access.client_id(request)) if access.limiter is not None and prefetched is None else None
        answer = await state["recommendations"].recommend(body, rate, prefetched)
        # serialised once (a cache hit: not at all), not validated again against response_model
        content = answer.body if isinstance(answer, CachedAnswer) else answer.model_dump_json()
        return Response(content=content, media_type="application/json")

    access.install(app)  # per-client rate limit (429 + Retry-After) on every route declared below
    rid = request_id_var.get
    # the hops of a cache miss over the lean keep-alive transport (httpx's own cost ~1.5 ms CPU a call here)
    rankers = RankerPool(settings.ranker_url_list(), timeout=settings.ranker_timeout_s, request_id=rid,
                         transports={u: KeepAliveTransport() for u in settings.ranker_url_list()})
    policy = PolicyClient(settings.policy_url, timeout=settings.policy_timeout_s, request_id=rid, transport=KeepAliveTransport())
    feedback = FeedbackClient(settings.feedback_url, timeout=settings.feedback_timeout_s, request_id=rid, transport=KeepAliveTransport())
    features = FeatureExtractorClient(settings.features_url, timeout=settings.features_timeout_s, connect_timeout=2.0, request_id=rid)
    cache = RecommendationCache(
        settings.resolved_redis_url(), ttl_s=settings.cache_ttl_s, stale_ttl_s=settings.stale_ttl_s,
        timeout_s=settings.redis_timeout_s, registry=registry,
        decision_log_key=get_settings().decision_log_key, decision_log_max=settings.decision_log_max,
    )
    poster_dir = settings.resolved_poster_dir()
    added_poster_dir = settings.resolved_added_poster_dir()

    def find_poster(movie: CatalogMovie) -> Path | None:
        return poster_file(poster_dir, movie) or poster_file(added_poster_dir, CatalogMovie(movie.movie_id, movie.title, movie.year, ()))

    def poster_url(movie: CatalogMovie) -> str | None:
        return f"/v1/movies/{movie.movie_id}/poster" if find_poster(movie) else None

    def the_catalog() -> MovieCatalog:
        if state["catalog"] is None:
            raise ServiceError("the gateway is starting", status=503, code="starting", headers={"Retry-After": "2"})
        return state["catalog"]

    def public(movie: CatalogMovie) -> MoviePublic:
        return MoviePublic(
            movie_id=movie.movie_id, title=movie.title, year=movie.year, genres=list(movie.genres), tags=list(movie.tags[:20]),
            average_rating=movie.average_rating, rating_count=movie.rating_count, plot=movie.plot, poster_url=poster_url(movie),
        )

    async def movie_or_404(movie_id: int) -> CatalogMovie:
        cat = the_catalog()
        movie = cat.get(movie_id)
        if movie is None:  # perhaps added through another gateway replica
            added = (await cache.added_movies()).get(movie_id)
            if added:
                cat.add_movie(CatalogMovie(**{**added, "genres": tuple(added["genres"]), "tags": tuple(added["tags"])}))
                movie = cat.get(movie_id)
        if movie is None:
            raise ServiceError(f"movie {movie_id} not found", status=404, code="not_found")
        return movie

    @app.on_event("startup")
    async def start() -> None:
        if state["catalog"] is None:
            state["catalog"] = await asyncio.to_thread(lambda: MovieCatalog.from_dataset(load_dataset()))
        for movie_id, added in (await cache.added_movies()).items():
            if movie_id not in state["catalog"]:
                state["catalog"].add_movie(CatalogMovie(**{**added, "genres": tuple(added["genres"]), "tags": tuple(added["tags"])}))
        state["recommendations"] = Recommendations(
            state["catalog"], rankers, policy, feedback, cache, registry, candidates=settings.candidates, poster_url=poster_url,
            refuse_if_limited=access.refuse_if_limited,
        )
        freeze_loaded_objects()

    @app.on_event("shutdown")
    async def stop() -> None:
        for client in (rankers, policy, feedback, features, cache):
            await client.aclose()

    # --- movies and users ---------------------------------------------------------------------

    @app.get("/v1/movies", response_model=MovieSearchResponse, tags=["movies"], responses=error_responses(401, 422, 503),
             dependencies=[Depends(access.reader)])
    async def search_movies(
        q: Annotated[str, Query(min_length=1, max_length=200, description="Words of the title")],
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> MovieSearchResponse:
        return MovieSearchResponse(query=q, items=[public(m) for m in the_catalog().search(q, limit)])

    @app.get("/v1/movies/{movie_id}", response_model=MoviePublic, tags=["movies"], responses=error_responses(404, 422, 503))
    async def get_movie(movie_id: MovieId) -> MoviePublic:
        return public(await movie_or_404(movie_id))

    @app.get("/v1/movies/{movie_id}/poster", tags=["movies"], response_class=FileResponse, responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The poster image"}, **error_responses(404, 422, 503)})
    async def get_poster(movie_id: MovieId):
        path = find_poster(await movie_or_404(movie_id))
        if path is None:
            raise ServiceError(f"movie {movie_id} has no poster", status=404, code="not_found")
        return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/v1/genres", response_model=list[str], tags=["movies"], responses=error_responses(503))
    async def genres() -> list[str]:
        return the_catalog().genres

    @app.get("/v1/users/{user_id}", response_model=UserPublic, tags=["users"], responses=error_responses(404, 422, 503))
    async def get_user(user_id: UserId) -> UserPublic:
        cat = the_catalog()
        if not cat.knows_user(user_id):
            raise ServiceError(f"user {user_id} not found", status=404, code="not_found")
        return UserPublic(user_id=user_id, rating_count=len(cat.rated_by(user_id)), liked=[public(cat.get(m)) for m in cat.liked_by(user_id, 10)])

    # --- feedback and user data ---------------------------------------------------------------

    @app.post("/v1/feedback", tags=["feedback"], status_code=201, responses={
        200: {"description": "Already stored (a retry of the same event_id)"}, **error_responses(400, 401, 403, 404, 409, 422, 503)})
    async def post_feedback(event: FeedbackEvent, caller: Principal | None = Depends(access.caller)):
        """Store a click, watch or rating (exactly once per ``event_id``; a retry answers 200).
        Needs the user's own credential (token or API key) unless writes are open (development)."""
        access.require_user(caller, event.user_id)
        await movie_or_404(event.movie_id)
        try:
            status, body = await feedback.record(event)
        except ServiceRejected as exc:
            raise ServiceError(exc.message, status=exc.status, code=exc.code) from None
        except ServiceUnavailable:
            raise ServiceError("feedback service unavailable: retry with the same event_id", status=503, code="feedback_unavailable", headers={"Retry-After": "2"}) from None
        # the feedback service also invalidates through Celery; doing it here too makes the
        # next list reflect the event at once
        await cache.forget_user(event.user_id, stale_too=False)
        return JSONResponse(body, status_code=status)

    @app.delete("/v1/users/{user_id}", tags=["users"], responses=error_responses(401, 403, 422, 503), dependencies=[Depends(access.own_user)])
    async def delete_user(user_id: UserId):
        """Delete every piece of the user's data: feedback events, cached lists and logged decisions."""
        try:
            body = await feedback.delete_user(user_id)
        except NotFound:
            body = {"user_id": user_id, "deleted_events": 0}
        except ServiceRejected as exc:
            raise ServiceError(exc.message, status=exc.status, code=exc.code) from None
        except ServiceUnavailable:
            raise ServiceError("feedback service unavailable: nothing was deleted, retry", status=503, code="feedback_unavailable", headers={"Retry-After": "2"}) from None
        cached = await cache.forget_user(user_id, stale_too=True)
        decisions = await cache.forget_user_decisions(user_id)
        return {**body, "user_id": user_id, "deleted_cache_entries": cached, "deleted_decisions": decisions}

    # --- admin and page -----------------------------------------------------------------------

    app.include_router(admin_router(AdminDeps(
        settings=settings, catalog=the_catalog, features=features, rankers=rankers, cache=cache, added_poster_dir=added_poster_dir, public=public,
    )), dependencies=[Depends(access.admin)])
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/index.html", include_in_schema=False)
    async def page_alias():
        return RedirectResponse("/")

    app.state.clients = {"rankers": rankers, "policy": policy, "feedback": feedback, "features": features, "cache": cache}
    return app
