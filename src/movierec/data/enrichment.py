"""Optional per-movie sources joined onto the catalog: TMDB plots, posters, trailer audio,
YouTube trailer ids and MMTF-14K trailer features. A missing source is reported, never fatal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from movierec.data.dataset import LoadReport, TrailerFeatures
from movierec.data.errors import DataFormatError
from movierec.data.tables import numeric_column, read_table

AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg")


def join_plots(catalog: pd.DataFrame, plots_csv: Path | None, report: LoadReport) -> None:
    if plots_csv is None or not plots_csv.exists():
        report.missing_optional.append(f"TMDB plots ({plots_csv or 'not configured'})")
        return
    frame = pd.read_csv(plots_csv, dtype={"overview": str, "release_date": str})
    if "movieId" not in frame or "overview" not in frame:
        raise DataFormatError(plots_csv, 1, "expected columns movieId and overview")
    frame = frame.drop_duplicates("movieId", keep="last").set_index("movieId")
    known = frame.index.intersection(catalog.index)
    plots = frame.loc[known, "overview"].where(frame.loc[known, "overview"].str.strip().str.len() > 0)
    catalog.loc[known, "plot"] = plots
    if "runtime" in frame:
        runtime = pd.to_numeric(frame.loc[known, "runtime"], errors="coerce")
        catalog.loc[known, "runtime"] = runtime.where(runtime > 0)
    if "release_date" in frame:
        catalog.loc[known, "release_date"] = frame.loc[known, "release_date"]
    if "tmdbId" in frame:
        tmdb = frame.loc[known, "tmdbId"].dropna().astype(np.int64).astype(str)
        catalog.loc[tmdb.index, "tmdb_id"] = catalog.loc[tmdb.index, "tmdb_id"].fillna(tmdb)


def _files_by_movie_id(folder: Path, suffixes: tuple[str, ...]) -> dict[int, str]:
    found: dict[int, str] = {}
    for entry in folder.iterdir():
        if entry.suffix.lower() in suffixes and entry.stem.isdigit():
            found[int(entry.stem)] = str(entry)
    return found


def join_files(catalog: pd.DataFrame, column: str, folder: Path | None, suffixes: tuple[str, ...], label: str, report: LoadReport) -> None:
    if folder is None or not folder.is_dir():
        report.missing_optional.append(f"{label} ({folder or 'not configured'})")
        return
    files = _files_by_movie_id(folder, suffixes)
    series = pd.Series(files, dtype=object)
    known = series.index.intersection(catalog.index)
    catalog.loc[known, column] = series.loc[known]


def join_youtube_ids(catalog: pd.DataFrame, csv: Path | None, report: LoadReport) -> None:
    if csv is None or not csv.exists():
        report.missing_optional.append(f"trailer YouTube ids ({csv or 'not configured'})")
        return
    frame = pd.read_csv(csv, dtype={"youtubeId": str}).drop_duplicates("movieId", keep="first").set_index("movieId")
    known = frame.index.intersection(catalog.index)
    catalog.loc[known, "youtube_id"] = frame.loc[known, "youtubeId"]


def read_mmtf(path: Path, source: str, catalog: pd.DataFrame, report: LoadReport) -> TrailerFeatures | None:
    """Read one MMTF-14K file (itemId,title,genres,"f1,f2,..."); keep catalog movies only."""
    if not path.exists():
        report.missing_optional.append(f"MMTF-14K {source} ({path})")
        return None
    frame = read_table(path, sep=",", names=["itemId", "title", "genres", "embedding"], header=True)
    ids = numeric_column(frame, "itemId", path, integer=True)
    rows = [np.array([float(x) for x in e.strip().strip(",").split(",") if x], dtype=np.float32) for e in frame["embedding"]]
    dims = {len(r) for r in rows}
    if len(dims) != 1:
        bad = next(i for i, r in enumerate(rows) if len(r) != len(rows[0]))
        raise DataFormatError(path, bad + 2, f"embedding has {len(rows[bad])} values, expected {len(rows[0])}")
    matrix = np.stack(rows)
    keep = np.isin(ids, catalog.index.to_numpy()) & np.isfinite(matrix).all(axis=1)
    _, first = np.unique(ids, return_index=True)
    unique_mask = np.zeros(len(ids), bool)
    unique_mask[first] = True
    keep &= unique_mask
    report.unknown_movie_features[f"MMTF {source}"] = int((~np.isin(ids, catalog.index.to_numpy())).sum())
    return TrailerFeatures(ids[keep], matrix[keep], source=f"mmtf14k:{path.name}")
