"""``/v1/movies/{movie_id}/features``: compute and store a movie's features, or read them back."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from movierec_service import ServiceError

from movierec.features.errors import BadItemError
from movierec.contracts.features import ModalityVector, MovieFeatures
from movierec.features.sources import source_hash, text_from_fields
from movierec.features.store import MODALITIES, FeatureStoreError
from movierec.features.trailer_import import TRAILER_MODALITIES

router = APIRouter(prefix="/v1")

MovieId = Annotated[int, Path(gt=0, description="MovieLens movie id")]
UPLOAD_FIELDS = {"poster": "poster", "audio": "audio"}


def _split(value: str, seps: str) -> list[str]:
    for sep in seps[1:]:
        value = value.replace(sep, seps[0])
    return [part.strip() for part in value.split(seps[0]) if part.strip()]


async def _read_upload(field: str, upload: UploadFile | None, limit: int) -> bytes | None:
    """The upload's bytes, None when no file was sent; too large -> 413, empty -> 422."""
    if upload is None or (not upload.filename and not upload.size):
        return None
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ServiceError(f"{field}: upload is larger than the {limit:,}-byte limit", status=413, code="upload_too_large")
    if not data:
        raise ServiceError(f"{field}: the uploaded file is empty", status=422, code="invalid_upload")
    return data


@router.post("/movies/{movie_id}/features", response_model=MovieFeatures)
async def extract_features(
    request: Request,
    movie_id: MovieId,
    title: Annotated[str, Form(max_length=1000)] = "",
    genres: Annotated[str, Form(max_length=2000, description="Separated by | or ,")] = "",
    tags: Annotated[str, Form(max_length=20000, description="Separated by ,")] = "",
    plot: Annotated[str, Form(max_length=20000)] = "",
    year: Annotated[int | None, Form(ge=1870, le=2100)] = None,
    poster: Annotated[UploadFile | None, File(description="Poster image (JPEG, PNG, ...)")] = None,
    audio: Annotated[UploadFile | None, File(description="Trailer audio (wav, flac, ogg, mp3)")] = None,
) -> MovieFeatures:
    """Compute every modality the inputs allow, store it, and return the vectors."""
    state = request.app.state
    settings, pool = state.settings, state.encoders
    if not pool.wait(0) or pool.problem:
        raise ServiceError(pool.problem or "encoders are still loading; retry shortly", status=503, code="not_ready",
                           headers={"Retry-After": "5"})
    if not title.strip():
        raise ServiceError("title: empty; a movie needs at least a title for its text features", status=422, code="empty_text")
    raws = {"text": text_from_fields(title, _split(genres, "|,"), _split(tags, ","), plot or None, year)}
    for modality, field in UPLOAD_FIELDS.items():
        data = await _read_upload(field, poster if field == "poster" else audio, settings.max_upload_bytes)
        if data is not None:
            raws[modality] = data

    skipped: dict[str, str] = {}
    for modality in ("poster", "audio"):
        if modality not in raws:
            skipped[modality] = f"no {UPLOAD_FIELDS[modality]} uploaded"
    for modality in list(raws):
        if modality not in pool.encoders:
            skipped[modality] = "this service has no encoder for it (see MOVIEREC_FEATURES_MODALITIES)"
            del raws[modality]
    for modality in TRAILER_MODALITIES:
        skipped[modality] = "precomputed MMTF-14K trailer features; not computed from uploads"

    vectors = {}
    for modality, raw in raws.items():  # everything is checked before anything is stored
        started = time.perf_counter()
        try:
            vectors[modality] = await _in_thread(pool.encode, modality, raw)
        except BadItemError as exc:
            field = "title" if modality == "text" else UPLOAD_FIELDS[modality]
            raise ServiceError(f"{field}: {exc.reason}", status=422, code=f"invalid_{field}") from None
        state.extraction_seconds.labels(modality).observe(time.perf_counter() - started)

    modalities = {}
    for modality, vector in vectors.items():
        encoder = pool.encoders[modality]
        try:
            await _in_thread(state.store.upsert, modality, movie_id, vector, source_hash(raws[modality]),
                             encoder.describe(), encoder.config_hash())
        except FeatureStoreError as exc:
            raise ServiceError(str(exc), status=409, code="store_encoder_mismatch") from None
        state.extracted_total.labels(modality).inc()
        modalities[modality] = ModalityVector(dim=encoder.dim, encoder=encoder.name, vector=vector.tolist())
    return MovieFeatures(movie_id=movie_id, modalities=modalities, skipped=skipped)


@router.get("/movies/{movie_id}/features", response_model=MovieFeatures)
async def stored_features(request: Request, movie_id: MovieId) -> MovieFeatures:
    """The movie's vectors as the store holds them; 404 when it has none."""
    reader = request.app.state.store_reader
    modalities, skipped = {}, {}
    for name in reader.available():
        loaded = await _in_thread(reader.modality, name)
        if loaded is None:
            continue
        feats, index = loaded
        row = index.get(movie_id)
        if row is None or not feats.mask[row]:
            reason = feats.provenance.get("skipped", {}).get(str(movie_id), {}).get("reason")
            skipped[name] = f"skipped when built: {reason}" if reason else "no features for this movie"
            continue
        modalities[name] = ModalityVector(dim=feats.dim, encoder=str(feats.provenance.get("encoder", "")),
                                          vector=feats.matrix[row].tolist())
    for name in MODALITIES:
        if name not in modalities:
            skipped.setdefault(name, "no features for this movie")
    if not modalities:
        raise ServiceError(f"movie_id: no features stored for movie {movie_id}", status=404, code="not_found")
    return MovieFeatures(movie_id=movie_id, modalities=modalities, skipped=skipped)


async def _in_thread(fn, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)
