"""``build_feature_store``: every modality for a whole catalog, with a build report on disk."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from movierec.data.dataset import Dataset
from movierec.features.build import ModalityBuildReport, build_modality
from movierec.features.config import COMPUTED_MODALITIES, FeatureSettings
from movierec.features.sources import catalog_sources
from movierec.features.store import MODALITIES, FeatureStore
from movierec.features.trailer_import import TRAILER_MODALITIES, trailer_modality

REPORT_FILE = "build_report.json"


def build_feature_store(
    ds: Dataset,
    store: FeatureStore,
    feature_settings: FeatureSettings,
    modalities: list[str] | None = None,
    *,
    batch_size: int | None = None,
    progress: bool = True,
    log=print,
) -> dict:
    """Build (incrementally) the chosen modalities; returns and saves the build report."""
    chosen = list(modalities or MODALITIES)
    catalog_ids = ds.catalog.index.to_numpy(np.int64)
    report: dict = {"dataset": ds.name, "dataset_version": ds.version, "store": str(store.root),
                    "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "modalities": {}}
    for modality in chosen:
        if modality in TRAILER_MODALITIES:
            feats = ds.trailer_features.get(TRAILER_MODALITIES[modality])
            if feats is None:
                report["modalities"][modality] = {"status": "no source (MMTF-14K not configured)"}
                log(f"{modality}: no source (MMTF-14K not configured), skipped")
                continue
            t = time.perf_counter()
            imported = trailer_modality(modality, feats, catalog_ids, ds.version)
            with store.writing():
                store.save(imported)
            report["modalities"][modality] = {"status": "imported", "present": int(imported.mask.sum()), "dim": imported.dim,
                                              "seconds": round(time.perf_counter() - t, 2), "source": feats.source}
            log(f"{modality}: imported {int(imported.mask.sum()):,} movies x {imported.dim}")
            write_report(store.root, report)  # after each modality: a build killed later keeps this entry
            continue
        if modality not in COMPUTED_MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; known: {', '.join(MODALITIES)}")
        sources = catalog_sources(ds, modality)
        if not sources:
            report["modalities"][modality] = {"status": "no source files configured"}
            log(f"{modality}: no movie has a source file (see `movierec data summary`), skipped")
            continue
        encoder = feature_settings.create(modality)
        size = batch_size or encoder.options.batch_size
        # most-rated movies first: a build stopped early still covers most of the ratings
        by_ratings = ds.ratings["movie_id"].value_counts().index.astype(int).tolist()
        result: ModalityBuildReport = build_modality(store, modality, encoder, sources, catalog_ids=catalog_ids,
                                                     batch_size=size, dataset_version=ds.version, priority=by_ratings,
                                                     progress=progress)
        report["modalities"][modality] = {"status": "built", **result.as_json()}
        log(f"{modality}: {result.present:,} present ({result.computed:,} computed at {result.items_per_second:.1f}/s, "
            f"{result.reused:,} unchanged, {result.resumed:,} resumed), {len(result.skipped):,} skipped, {result.seconds:.1f} s")
        write_report(store.root, report)
    report["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_report(store.root, report)
    return report


def write_report(root: Path, report: dict) -> None:
    """Merge into the store's report, so building one modality keeps the others' entries."""
    path = Path(root) / REPORT_FILE
    previous = json.loads(path.read_text()) if path.exists() else {}
    merged = {**previous, **{k: v for k, v in report.items() if k != "modalities"},
              "modalities": {**previous.get("modalities", {}), **report["modalities"]}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=1))
