"""``Recommendations``: the gateway's call order for one list, and how it degrades.

    cache (known users) -> ranker top-N candidates -> policy re-rank -> cache

- policy down, slow or refusing: the ranker's order is served (``policy_version`` says
  ``ranker-order``), counted in ``movierec_gateway_fallbacks_total{reason="policy_unavailable"}``
  (or ``policy_rejected`` when it answered a 4xx);
- every ranker replica down: the user's last list (stale cache) or popular movies, marked
  ``degraded``, counted with reason ``ranker_unavailable_stale`` or ``ranker_unavailable_popular``;
- feedback service down: the user's history from the dataset alone (counted, not degraded).
A dependency's failure is never a 5xx.

A list the policy chose for a known user is logged as a ``ServedDecision`` (its candidates, the
ranker's scores, the recent movies sent, the slate and its propensities) in the cache's write
round trip; the answer carries its ``decision_id`` for feedback to send back, so the retraining
values the decision as it was made. A cache hit serves the same decision again.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge
from movierec_service import ServiceError

from movierec.clients import FeedbackClient, NotFound, PolicyClient, RankerPool, ServiceRejected, ServiceUnavailable
from movierec.contracts.decisions import ServedDecision
from movierec.contracts.policy import RankRequest
from movierec.contracts.ranker import ScoredMovie, TopNRequest, TopNResponse
from movierec.contracts.recommendations import RecommendationRequest, RecommendationResponse, RecommendedMovie
from movierec.serving.catalog import LIKE_THRESHOLD, MovieCatalog
from movierec.serving.explanations import explain, explain_popular
from movierec.serving.filters import FilterError, check_filters
from movierec.serving.popularity import popular_movies
from movierec.security.rate_limit import RateDecision
from movierec_gateway.cache import CacheLookup, RateCheck, RecommendationCache, request_hash

log = logging.getLogger("movierec.gateway")

RANKER_ORDER = "ranker-order"
POPULAR = "popular"
WATCHED_KINDS = ("watch", "rating")
RECENT = 5
NO_POSTER_RECHECK_S = 60.0
"""A movie found without a poster is looked up on disk again after this long (one uploaded
through the admin API shows up without a restart)."""


@dataclass(frozen=True)
class CachedAnswer:
    """A cache hit: the answer's JSON body as the cache holds it, sent as it is."""

    body: bytes


@dataclass
class UserHistory:
    watched: set[int]
    liked: list[int]
    recent: list[int]
    events: list[dict] | None = None
    """The feedback service's answer when it was just asked (kept with the user's lists)."""


class Recommendations:
    def __init__(
        self,
        catalog: MovieCatalog,
        rankers: RankerPool,
        policy: PolicyClient,
        feedback: FeedbackClient,
        cache: RecommendationCache,
        registry: CollectorRegistry,
        *,
        candidates: int,
        poster_url,
        refuse_if_limited: Callable[[RateDecision], None] = lambda decision: None,
    ):
        """``refuse_if_limited`` raises the 429 for a refusing rate-limit decision."""
        self.catalog = catalog
        self.rankers = rankers
        self.policy = policy
        self.feedback = feedback
        self.cache = cache
        self.candidates = candidates
        self._find_poster_url = poster_url
        self.refuse_if_limited = refuse_if_limited
        self._poster_urls: dict[int, tuple[object, str | None, float]] = {}
        self.fallbacks = Counter("movierec_gateway_fallbacks_total", "Answers served without a dependency", ["reason"], registry=registry)
        self.served = Counter("movierec_gateway_recommendations_total", "Recommendation lists served", ["source"], registry=registry)
        self.versions = Gauge("movierec_gateway_served_version_info", "Model and policy versions of the last list (value 1)", ["model_version", "policy_version"], registry=registry)
        self._served_from_cache = self.served.labels("cache")
        self._served_versions: tuple[str | None, str] | None = None

    async def lookup(self, request: RecommendationRequest, rate: RateCheck | None = None) -> CacheLookup:
        """What the cache holds for a known user's request, and (with ``rate``) the caller's rate
        limit, in one Redis round trip."""
        return await self.cache.lookup(int(request.user_id), request_hash(request), rate)

    def count_cache_hit(self) -> None:
        self._served_from_cache.inc()

    async def recommend(self, request: RecommendationRequest, rate: RateCheck | None = None,
                        prefetched: CacheLookup | None = None) -> RecommendationResponse | CachedAnswer:
        """The list for ``request``: a ``CachedAnswer`` (the stored body) on a cache hit. ``rate``:
        the caller's rate limit, checked first (for a known user in the cache's round trip);
        ``prefetched``: that round trip's result when it was already made (``lookup``)."""
        found = None
        if request.user_id is not None:
            found = prefetched or await self.lookup(request, rate)
            decision = found.rate
        else:
            decision = await rate.limiter.check(rate.client_id) if rate is not None else None
        if decision is not None:
            self.refuse_if_limited(decision)
        try:
            check_filters(request.filters, self.catalog.genres)
        except FilterError as exc:
            raise ServiceError(str(exc), status=422, code="invalid_request") from None
        unknown = [m for m in request.liked_movie_ids if m not in self.catalog]
        if unknown:
            raise ServiceError(f"movie{'s' if len(unknown) > 1 else ''} {', '.join(map(str, unknown))} not found (liked_movie_ids)", status=404, code="not_found")
        if request.user_id is not None:
            return await self._known_user(request, found)
        return await self._new_user(request)

    # --- known user ---------------------------------------------------------------------------

    async def _known_user(self, request: RecommendationRequest, found: CacheLookup) -> RecommendationResponse | CachedAnswer:
        uid, digest = int(request.user_id), found.digest
        if not self.catalog.knows_user(uid):
            raise ServiceError(f"user {uid} not found", status=404, code="not_found")
        if found.answer is not None:
            self.count_cache_hit()
            return CachedAnswer(found.answer)
        history = await self._history(uid, found.history)
        exclude = set(request.exclude_movie_ids) | (history.watched if request.filters.exclude_watched else set())
        top = await self._candidates(TopNRequest(
            user_id=uid, liked_movie_ids=history.liked, exclude_movie_ids=sorted(exclude),
            filters=request.filters, k=max(self.candidates, request.k),
        ))
        if top is None:
            stale = await self.cache.get_stale(uid, digest)
            if stale is not None:
                self.fallbacks.labels("ranker_unavailable_stale").inc()
                self.served.labels("stale").inc()
                return RecommendationResponse.model_validate({**stale, "degraded": True, "degraded_reason": "ranker unavailable: your last list",
                                                              "cached": True, "decision_id": None})
            exclude |= set(self.catalog.rated_by(uid)) if request.filters.exclude_watched else set()
            return self._popular(request, exclude)
        response, decision = await self._ranked(request, top, liked=top.liked_movie_ids, recent=history.recent, user_id=uid)
        await self.cache.put(uid, digest, response, history=history.events, decision=decision)
        return response

    async def _history(self, user_id: int, cached_events: list[dict] | None) -> UserHistory:
        """What the user did since the model was trained (feedback service, or its answer cached
        with the user's lists) on top of the dataset; its ``events`` only when just fetched."""
        rated = self.catalog.rated_by(user_id)
        watched, liked, recent = set(rated), [], []
        events, fetched = cached_events, None
        if events is None:
            try:
                events = fetched = await self.feedback.user_events(user_id)
            except (ServiceUnavailable, ServiceRejected) as exc:
                self.fallbacks.labels("feedback_unavailable").inc()
                log.warning("user history without feedback events: %s", exc)
                events = []
        for e in sorted(events, key=lambda e: e.get("occurred_at") or ""):
            movie_id = e.get("movie_id")
            if e.get("kind") in WATCHED_KINDS and movie_id:
                watched.add(movie_id)
                recent.append(movie_id)
            if e.get("kind") == "rating" and (e.get("rating") or 0) >= LIKE_THRESHOLD:
                liked.append(movie_id)
        recent = list(rated)[-RECENT:] + recent  # rated_by is oldest first
        recent = [m for m in dict.fromkeys(reversed(recent))][:RECENT][::-1]
        return UserHistory(watched=watched, liked=list(dict.fromkeys(reversed(liked))), recent=recent, events=fetched)

    # --- new user -----------------------------------------------------------------------------

    async def _new_user(self, request: RecommendationRequest) -> RecommendationResponse:
        exclude = set(request.exclude_movie_ids) | (set(request.liked_movie_ids) if request.filters.exclude_watched else set())
        top = await self._candidates(TopNRequest(
            liked_movie_ids=request.liked_movie_ids, exclude_movie_ids=sorted(exclude),
            filters=request.filters, k=max(self.candidates, request.k),
        ))
        if top is None:
            return self._popular(request, exclude)
        response, _ = await self._ranked(request, top, liked=request.liked_movie_ids, recent=request.liked_movie_ids[-RECENT:], user_vector=top.user_vector)
        return response

    # --- shared steps -------------------------------------------------------------------------

    async def _candidates(self, request: TopNRequest) -> TopNResponse | None:
        """The ranker's candidates; None when no replica can answer."""
        try:
            return await self.rankers.top_n(request)
        except ServiceUnavailable as exc:
            log.warning("ranker unavailable: %s", exc)
            return None
        except NotFound as exc:
            raise ServiceError(exc.message, status=404, code="not_found") from None
        except ServiceRejected as exc:
            raise ServiceError(exc.message, status=422 if exc.status == 422 else 400, code=exc.code) from None

    async def _ranked(
        self, request: RecommendationRequest, top: TopNResponse, *, liked: list[int], recent: list[int],
        user_id: int | None = None, user_vector: list[float] | None = None,
    ) -> tuple[RecommendationResponse, ServedDecision | None]:
        """Re-rank the candidates with the policy (the ranker's order when it cannot) and explain;
        with the policy's decision for a known user, to be logged."""
        by_id = {s.movie_id: s for s in top.items}
        order: list[tuple[ScoredMovie, float | None]] = [(s, None) for s in top.items[: request.k]]
        policy_version = RANKER_ORDER
        if top.items:
            policy_request = RankRequest.model_validate({  # one pass in pydantic-core, not 100 candidate objects
                "user_id": user_id, "user_vector": user_vector, "recent_movie_ids": recent[-RECENT:], "k": request.k,
                "candidates": [{"movie_id": s.movie_id, "score": s.score} for s in top.items],
            })
            try:
                ranked = await self.policy.rank(policy_request)
                if ranked.items and all(i.movie_id in by_id for i in ranked.items):
                    order = [(by_id[i.movie_id], i.propensity) for i in ranked.items[: request.k]]
                    policy_version = ranked.policy_version
                else:
                    raise ServiceUnavailable("policy", "answered movies that were not candidates")
            except (ServiceUnavailable, ServiceRejected) as exc:
                # rejected: e.g. a user or a just-added movie the policy's model does not know yet
                self.fallbacks.labels("policy_rejected" if isinstance(exc, ServiceRejected) else "policy_unavailable").inc()
                log.warning("serving the ranker's order: %s", exc)
        items = []
        for scored, propensity in order:
            movie = self.catalog.get(scored.movie_id)
            if movie is None:  # the ranker knows a movie this replica does not (yet): skip it
                continue
            because = (scored.because.movie_id, scored.because.similarity) if scored.because else None
            items.append(self._item(movie, scored.score, propensity, explain(self.catalog, movie.movie_id, scored.attention, because, liked)))
        self.served.labels("policy" if policy_version != RANKER_ORDER else "ranker").inc()
        if self._served_versions != (top.model_version, policy_version):  # clear() and a new child on every list were a visible cost
            self._served_versions = (top.model_version, policy_version)
            self.versions.clear()
            self.versions.labels(top.model_version, policy_version).set(1)
        decision = None
        if policy_version != RANKER_ORDER and user_id is not None and len(items) == len(order):
            decision = ServedDecision.model_construct(  # built from validated parts: no second validation on the miss path
                decision_id=uuid.uuid4().hex, user_id=user_id, policy_version=policy_version, served_at=time.time(),
                recent_movie_ids=policy_request.recent_movie_ids, session_step=policy_request.session_step,
                candidates=[s.movie_id for s in top.items], scores=[s.score for s in top.items],
                slate=[s.movie_id for s, _ in order], propensities=[p for _, p in order])
        response = RecommendationResponse(user_id=request.user_id, items=items, policy_version=policy_version, model_version=top.model_version,
                                          decision_id=decision.decision_id if decision else None)
        return response, decision

    def _popular(self, request: RecommendationRequest, exclude: set[int]) -> RecommendationResponse:
        self.fallbacks.labels("ranker_unavailable_popular").inc()
        self.served.labels("popular").inc()
        top = popular_movies(self.catalog, request.k, request.filters, exclude)
        items = [self._item(self.catalog.get(s.movie_id), s.score, None, explain_popular(self.catalog, s.movie_id)) for s in top]
        return RecommendationResponse(
            user_id=request.user_id, items=items, policy_version=POPULAR, model_version=None,
            degraded=True, degraded_reason="ranker unavailable: popular movies",
        )

    def poster_url(self, movie) -> str | None:
        """``poster_url`` remembered per movie (file lookups were ~4% of the miss path); a movie
        replaced in the catalog is looked up again, a missing poster after ``NO_POSTER_RECHECK_S``."""
        now = time.monotonic()
        known = self._poster_urls.get(movie.movie_id)
        if known is not None and known[0] is movie and (known[1] is not None or now - known[2] < NO_POSTER_RECHECK_S):
            return known[1]
        url = self._find_poster_url(movie)
        self._poster_urls[movie.movie_id] = (movie, url, now)
        return url

    def _item(self, movie, score: float, propensity: float | None, explanation) -> RecommendedMovie:
        return RecommendedMovie(
            movie_id=movie.movie_id, title=movie.title, year=movie.year, genres=list(movie.genres), score=round(float(score), 5),
            average_rating=movie.average_rating, poster_url=self.poster_url(movie), propensity=propensity, explanation=explanation,
        )
