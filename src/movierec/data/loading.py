"""``load_dataset``: one call from configuration to the canonical ``Dataset``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from movierec.data.dataset import CATALOG_COLUMNS, Dataset, LoadReport
from movierec.data.enrichment import AUDIO_SUFFIXES, join_files, join_plots, join_youtube_ids, read_mmtf
from movierec.data.errors import DataError
from movierec.data.movielens import READERS
from movierec.settings import Settings, get_settings


def _hash_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def _dedupe_ratings(ratings: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """Keep each user's latest rating of a movie (a re-rating replaces the old one)."""
    ordered = ratings.sort_values(["user_id", "movie_id", "timestamp"], kind="stable")
    dup = ordered.duplicated(["user_id", "movie_id"], keep="last")
    report.duplicate_ratings = int(dup.sum())
    return ordered[~dup]


def load_dataset(settings: Settings | None = None, *, dataset_dir: Path | None = None, dataset_format: str | None = None) -> Dataset:
    """Read a MovieLens folder and every configured modality source into one ``Dataset``."""
    s = settings or get_settings()
    root = Path(dataset_dir or s.dataset_dir)
    fmt = dataset_format or s.dataset_format
    if fmt not in READERS:
        raise DataError(f"unknown dataset format {fmt!r}; known: {', '.join(READERS)}")
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist (set MOVIEREC_DATASET_DIR)")
    raw = READERS[fmt](root)
    report = LoadReport()

    catalog = raw.movies.copy()
    tag_lists = raw.tags[raw.tags["movie_id"].isin(catalog.index)]
    report.unknown_movie_tags = int(len(raw.tags) - len(tag_lists))
    tag_lists = tag_lists[tag_lists["tag"].str.len() > 0]
    # distinct tags per movie, most used first, so the text encoder sees what people say most
    counted = tag_lists.assign(key=tag_lists["tag"].str.lower()).groupby(["movie_id", "key"]).agg(tag=("tag", "first"), n=("tag", "size"))
    counted = counted.reset_index().sort_values(["movie_id", "n", "tag"], ascending=[True, False, True])
    tags_by_movie = counted.groupby("movie_id")["tag"].agg(tuple)
    catalog["tags"] = [tags_by_movie.get(m, ()) for m in catalog.index]
    for col in ("plot", "release_date", "poster_path", "audio_path", "youtube_id"):
        catalog[col] = pd.Series(None, index=catalog.index, dtype=object)
    catalog["runtime"] = np.nan
    links = raw.links[~raw.links.index.duplicated()]
    catalog["imdb_id"] = links["imdb_id"].reindex(catalog.index).astype(object)
    catalog["tmdb_id"] = links["tmdb_id"].reindex(catalog.index).astype(object)

    join_plots(catalog, s.plots_csv, report)
    join_files(catalog, "poster_path", s.poster_dir, (".jpg", ".jpeg", ".png"), "posters", report)
    join_files(catalog, "audio_path", s.trailer_audio_dir, AUDIO_SUFFIXES, "trailer audio", report)
    join_youtube_ids(catalog, s.trailer_ids_csv, report)

    trailer = {}
    if s.mmtf_dir is not None:
        for name, rel in (("ivector", s.mmtf_ivector_file), ("avf", s.mmtf_avf_file)):
            feats = read_mmtf(Path(s.mmtf_dir) / rel, name, catalog, report)
            if feats is not None:
                trailer[name] = feats
    else:
        report.missing_optional.append("MMTF-14K trailer features (not configured)")

    ratings = raw.ratings
    known = ratings["movie_id"].isin(catalog.index)
    report.unknown_movie_ratings = int((~known).sum())
    ratings = _dedupe_ratings(ratings[known], report)
    ratings = ratings.sort_values(["user_id", "timestamp", "movie_id"], kind="stable").reset_index(drop=True)
    ratings = ratings.astype({"user_id": np.int64, "movie_id": np.int64, "rating": np.float32, "timestamp": np.int64})

    return Dataset(
        name=fmt if root.name != fmt else root.name,
        catalog=catalog[CATALOG_COLUMNS],
        ratings=ratings,
        trailer_features=trailer,
        report=report,
        source_hash=_hash_files(raw.files),
    )
