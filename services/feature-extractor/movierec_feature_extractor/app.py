"""App factory: ``uvicorn movierec_feature_extractor.app:create_app --factory``."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from movierec_service import create_service_app
from prometheus_client import Counter, Histogram

from movierec.features.encoder import Encoder
from movierec.features.store import FeatureStore

from movierec_feature_extractor.encoder_pool import EncoderPool
from movierec_feature_extractor.routes import router
from movierec_feature_extractor.settings import ServiceSettings
from movierec_feature_extractor.store_reader import StoreReader


def create_app(settings: ServiceSettings | None = None, encoders: dict[str, Encoder] | None = None) -> FastAPI:
    """Build the service; ``encoders`` (already loaded) skips loading, as tests share them."""
    settings = settings or ServiceSettings()
    pool = EncoderPool(settings, encoders)
    app = create_service_app("feature-extractor", readiness=[pool.readiness], log_level=settings.log_level)
    store = FeatureStore(settings.features_dir)
    app.state.settings = settings
    app.state.encoders = pool
    app.state.store = store
    app.state.store_reader = StoreReader(store)
    registry = app.state.metrics_registry
    app.state.extracted_total = Counter("features_extracted_total", "Movie modality vectors computed and stored",
                                        ["modality"], registry=registry)
    app.state.extraction_seconds = Histogram("feature_extraction_seconds", "Time to encode one input", ["modality"],
                                             registry=registry, buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        pool.load_in_background()
        yield

    app.router.lifespan_context = lifespan
    app.include_router(router)
    return app
