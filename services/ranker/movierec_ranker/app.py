"""The ranker service: top-N over the fusion model's item vectors, on the GPU when there is one.

    uvicorn movierec_ranker.app:create_app --factory --port 8001

Routes: ``POST /v1/topn`` (``TopNRequest`` -> ``TopNResponse``), ``POST /v1/items`` (add a new
movie from its modality vectors), ``POST /v1/reload`` (load the model folder again), ``GET
/v1/info``. A new model version published to the folder is also picked up every
``reload_interval_s`` seconds; requests keep being answered by the old version while it loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from pathlib import Path

import torch
from fastapi import Request, Response
from prometheus_client import Counter, Gauge

from movierec.contracts.errors import error_responses
from movierec.contracts.ranker import AddItemRequest, AddItemResponse, RankerInfo, TopNRequest, TopNResponse
from movierec.data import load_dataset
from movierec.serving.catalog import MovieCatalog
from movierec.serving.errors import FilterError, InvalidInput, ModelUnavailable, UnknownMovie, UnknownUser
from movierec.serving.item_index import pick_device
from movierec.models.recommender import load_recommender
from movierec.serving.ranker import ModelLoader, Ranker
from movierec_ranker.settings import RankerSettings
from movierec_service import ServiceError, create_service_app
from movierec_service.heap import freeze_loaded_objects

log = logging.getLogger("movierec.ranker")


def _as_service_error(exc: Exception) -> ServiceError:
    if isinstance(exc, (UnknownUser, UnknownMovie)):
        return ServiceError(str(exc), status=404, code="not_found")
    if isinstance(exc, (FilterError, InvalidInput)):
        return ServiceError(str(exc), status=422, code="invalid_request")
    if isinstance(exc, ModelUnavailable):
        return ServiceError(str(exc), status=503, code="model_unavailable", headers={"Retry-After": "5"})
    raise exc


def _published_version(folder: Path) -> str | None:
    try:
        return json.loads((folder / "artifact.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def create_app(
    settings: RankerSettings | None = None,
    *,
    catalog: MovieCatalog | None = None,
    loader: ModelLoader = load_recommender,
):
    """The ranker app. ``catalog`` and ``loader`` are for tests (default: the configured dataset
    and the fusion model in the configured folder)."""
    settings = settings or RankerSettings()
    folder = settings.model_folder()
    state: dict = {"ranker": None, "load_error": None}
    reload_lock = threading.Lock()

    async def model_loaded() -> str | None:
        ranker: Ranker | None = state["ranker"]
        if ranker is None:
            return "catalog not loaded yet"
        if ranker.model is None:
            return f"no model loaded from {folder}: {state['load_error'] or 'loading'}"
        return None

    app = create_service_app("ranker", readiness=[model_loaded], log_level=settings.log_level)
    registry = app.state.metrics_registry
    model_info = Gauge("movierec_ranker_model_info", "The served model version (value 1)", ["version"], registry=registry)
    items_gauge = Gauge("movierec_ranker_items", "Movies the ranker can serve", registry=registry)
    reloads = Counter("movierec_ranker_reloads_total", "Model loads", ["outcome"], registry=registry)
    added_total = Counter("movierec_ranker_added_items_total", "Movies added without retraining", registry=registry)

    def publish_metrics(ranker: Ranker) -> None:
        model_info.clear()
        if ranker.model is not None:
            model_info.labels(ranker.model.version).set(1)
            items_gauge.set(len(ranker.model.index))

    def reload_blocking(force: bool) -> bool:
        """Load the folder if it holds a new version (or ``force``); True when a version was swapped in."""
        ranker: Ranker = state["ranker"]
        with reload_lock:
            published = _published_version(folder)
            if published is None:
                state["load_error"] = f"no serving artifact in {folder} (train a model first: `movierec model train`)"
                return False
            if not force and ranker.model is not None and ranker.model.version == published:
                return False
            try:
                ranker.load(folder)
            except Exception as exc:  # a broken publish must not take the served version down
                reloads.labels("error").inc()
                state["load_error"] = f"{type(exc).__name__}: {exc}"
                log.exception("loading the model in %s failed; still serving %s", folder, ranker.model and ranker.model.version)
                return False
            state["load_error"] = None
            reloads.labels("ok").inc()
            publish_metrics(ranker)
            return True

    async def watch_folder() -> None:
        while True:
            await asyncio.sleep(settings.reload_interval_s)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(reload_blocking, False)

    @app.on_event("startup")
    async def start() -> None:
        torch.set_num_threads(max(1, settings.torch_threads))
        cat = catalog or await asyncio.to_thread(lambda: MovieCatalog.from_dataset(load_dataset()))
        state["ranker"] = Ranker(catalog=cat, device=pick_device(settings.device), loader=loader, journal=settings.journal(),
                                new_movie_share=settings.new_movie_share)
        await asyncio.to_thread(reload_blocking, True)
        freeze_loaded_objects()
        if settings.reload_interval_s > 0:
            state["watcher"] = asyncio.create_task(watch_folder())

    @app.on_event("shutdown")
    async def stop() -> None:
        task = state.get("watcher")
        if task:
            task.cancel()

    def ranker() -> Ranker:
        if state["ranker"] is None:
            raise ServiceError("the ranker is starting", status=503, code="starting", headers={"Retry-After": "2"})
        return state["ranker"]

    @app.post("/v1/topn", response_model=TopNResponse, responses=error_responses(400, 404, 422, 503))
    async def top_n(body: TopNRequest) -> Response:
        """Top-N movies for a known user, a user vector, or a new user's liked movies, filtered."""
        # on the event loop, not in the thread pool: a few milliseconds of work (more at 10^6
        # items) that the hand-off to a thread and back cost a visible share of
        try:
            top = ranker().top_n(body)
        except Exception as exc:
            raise _as_service_error(exc) from None
        # already a validated TopNResponse: serialised once in pydantic-core, not re-validated by FastAPI
        return Response(content=top.model_dump_json(), media_type="application/json")

    @app.post("/v1/items", response_model=AddItemResponse, responses=error_responses(400, 422, 503))
    def add_item(body: AddItemRequest) -> AddItemResponse:
        """Add (or replace) a movie from its modality vectors; served from the next request on."""
        try:
            response = ranker().add_item(body)
        except Exception as exc:
            raise _as_service_error(exc) from None
        added_total.inc()
        publish_metrics(ranker())
        return response

    @app.post("/v1/reload", response_model=RankerInfo, responses=error_responses(503))
    async def reload(request: Request) -> RankerInfo:
        """Load the model folder again now (atomically: the old version serves until the new one is ready)."""
        r = ranker()
        await asyncio.to_thread(reload_blocking, True)
        if r.model is None:
            raise ServiceError(f"no model loaded from {folder}: {state['load_error']}", status=503, code="model_unavailable")
        return info()

    @app.get("/v1/info", response_model=RankerInfo, responses=error_responses(503))
    def info() -> RankerInfo:
        r = ranker()
        m = r.model
        return RankerInfo(
            model_version=m.version if m else None, items=len(m.index) if m else 0, dim=m.index.dim if m else None,
            device=str(r.device), added_movie_ids=sorted(r.added), artifact_dir=str(folder),
        )

    return app
