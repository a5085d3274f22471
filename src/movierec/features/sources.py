"""What each movie of a catalog gives each modality: a text, or a file whose bytes are encoded.

The build keys incremental work on ``source_hash``: the hash of the text or of the file's bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from movierec.data.dataset import Dataset, catalog_row_text
from movierec.features.errors import BadItemError

Source = str | Path
"""A text (str) or a file (Path)."""


def catalog_sources(ds: Dataset, modality: str) -> dict[int, Source]:
    """Per movie, the input of ``modality``; movies without one are left out."""
    catalog = ds.catalog
    if modality == "text":
        return {int(m): catalog_row_text(row) for m, row in catalog.iterrows()}
    column = {"poster": "poster_path", "audio": "audio_path"}.get(modality)
    if column is None:
        raise ValueError(f"no catalog source for modality {modality!r}")
    paths = catalog[column].dropna()
    return {int(m): Path(p) for m, p in paths.items() if isinstance(p, str) and p}


def read_source(source: Source) -> str | bytes:
    """The raw input: the text itself, or the file's bytes (unreadable -> ``BadItemError``)."""
    if isinstance(source, str):
        return source
    try:
        return source.read_bytes()
    except OSError as exc:
        raise BadItemError(f"cannot read {source.name}: {exc.strerror or exc}") from None


def source_hash(raw: str | bytes) -> str:
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    return hashlib.sha256(data).hexdigest()[:20]


def text_from_fields(title: str, genres: list[str], tags: list[str], plot: str | None, year: int | None = None) -> str:
    """The text-encoder input for a movie given as fields (the service), as for catalog rows."""
    title = title.strip()
    if year and f"({year})" not in title:
        title = f"{title} ({year})"
    row = pd.Series({"title": title, "genres": tuple(g for g in genres if g), "tags": tuple(t for t in tags if t), "plot": plot})
    return catalog_row_text(row)
