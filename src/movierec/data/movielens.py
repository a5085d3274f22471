"""Readers for the MovieLens formats people have: ml-latest-small/ml-25m (CSV), ml-1m (``::``),
ml-100k (``u.data``/``u.item``). Each returns the canonical catalog and ratings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from movierec.data.errors import DataFormatError
from movierec.data.tables import check_no_blank_rows, line_of, numeric_column, read_number_table, read_table

_YEAR = re.compile(r"\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
]


@dataclass(frozen=True)
class RatingScale:
    low: float
    high: float
    step: float


HALF_STARS = RatingScale(0.5, 5.0, 0.5)
WHOLE_STARS = RatingScale(1.0, 5.0, 1.0)


@dataclass
class RawMovieLens:
    movies: pd.DataFrame  # index movie_id; title, year, genres
    ratings: pd.DataFrame  # user_id, movie_id, rating, timestamp
    tags: pd.DataFrame  # movie_id, tag (may be empty)
    links: pd.DataFrame  # index movie_id; imdb_id, tmdb_id (may be empty)
    files: list[Path]


def parse_year(title: str) -> float:
    m = _YEAR.search(title)
    return float(m.group(1)) if m else np.nan


def _split_genres(text: str) -> tuple[str, ...]:
    if not text or text == "(no genres listed)":
        return ()
    return tuple(g for g in text.split("|") if g)


def _movies_frame(ids: np.ndarray, titles: pd.Series, genres: list[tuple[str, ...]], path: Path, frame) -> pd.DataFrame:
    dup = pd.Index(ids).duplicated()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        raise DataFormatError(path, line_of(frame, pos), f"movie id {ids[pos]} appears twice")
    titles = titles.str.strip()
    out = pd.DataFrame(
        {"title": titles.to_numpy(), "year": [parse_year(t) for t in titles], "genres": genres},
        index=pd.Index(ids, name="movie_id"),
    )
    return out


def _ratings_frame(frame: pd.DataFrame, path: Path, scale: RatingScale) -> pd.DataFrame:
    check_no_blank_rows(frame, path, "timestamp")
    users = numeric_column(frame, "user_id", path, integer=True)
    movies = numeric_column(frame, "movie_id", path, integer=True)
    ratings = numeric_column(frame, "rating", path, integer=False)
    stamps = numeric_column(frame, "timestamp", path, integer=True)
    off_scale = (ratings < scale.low) | (ratings > scale.high) | (np.mod(ratings - scale.low, scale.step) != 0)
    if off_scale.any():
        pos = int(np.flatnonzero(off_scale)[0])
        raise DataFormatError(
            path, line_of(frame, pos),
            f"rating {frame['rating'].iloc[pos]!r} is outside the scale {scale.low}..{scale.high} in steps of {scale.step}",
        )
    return pd.DataFrame(
        {"user_id": users, "movie_id": movies, "rating": ratings.astype(np.float32), "timestamp": stamps}
    )


def read_csv_format(root: Path) -> RawMovieLens:
    """ml-latest-small and ml-25m: movies.csv, ratings.csv, optional tags.csv and links.csv."""
    movies_path, ratings_path = root / "movies.csv", root / "ratings.csv"
    mf = read_table(movies_path, sep=",", names=["movieId", "title", "genres"], header=True)
    check_no_blank_rows(mf, movies_path, "movieId")
    ids = numeric_column(mf, "movieId", movies_path, integer=True)
    movies = _movies_frame(ids, mf["title"], [_split_genres(g) for g in mf["genres"]], movies_path, mf)

    rf = read_number_table(ratings_path, sep=",", names=["userId", "movieId", "rating", "timestamp"],
                           dtypes=["int64", "int64", "float64", "int64"], header=True)
    rf.columns = ["user_id", "movie_id", "rating", "timestamp"]
    ratings = _ratings_frame(rf, ratings_path, HALF_STARS)
    files = [movies_path, ratings_path]

    tags = pd.DataFrame({"movie_id": pd.Series(dtype=np.int64), "tag": pd.Series(dtype=str)})
    tags_path = root / "tags.csv"
    if tags_path.exists():
        tf = read_table(tags_path, sep=",", names=["userId", "movieId", "tag", "timestamp"], header=True)
        tags = pd.DataFrame({"movie_id": numeric_column(tf, "movieId", tags_path, integer=True), "tag": tf["tag"].str.strip()})
        files.append(tags_path)

    links = pd.DataFrame({"imdb_id": pd.Series(dtype=object), "tmdb_id": pd.Series(dtype=object)})
    links_path = root / "links.csv"
    if links_path.exists():
        lf = read_table(links_path, sep=",", names=["movieId", "imdbId", "tmdbId"], header=True)
        links = pd.DataFrame(
            {"imdb_id": lf["imdbId"].replace("", None).to_numpy(), "tmdb_id": lf["tmdbId"].replace("", None).to_numpy()},
            index=pd.Index(numeric_column(lf, "movieId", links_path, integer=True), name="movie_id"),
        )
        files.append(links_path)
    return RawMovieLens(movies, ratings, tags, links, files)


def read_ml1m(root: Path) -> RawMovieLens:
    movies_path, ratings_path = root / "movies.dat", root / "ratings.dat"
    mf = read_table(movies_path, sep="::", names=["movieId", "title", "genres"], header=False, encoding="latin-1")
    check_no_blank_rows(mf, movies_path, "movieId")
    ids = numeric_column(mf, "movieId", movies_path, integer=True)
    movies = _movies_frame(ids, mf["title"], [_split_genres(g) for g in mf["genres"]], movies_path, mf)
    rf = read_table(ratings_path, sep="::", names=["user_id", "movie_id", "rating", "timestamp"], header=False)
    ratings = _ratings_frame(rf, ratings_path, WHOLE_STARS)
    return RawMovieLens(movies, ratings, _no_tags(), _no_links(), [movies_path, ratings_path])


def read_ml100k(root: Path) -> RawMovieLens:
    items_path, data_path = root / "u.item", root / "u.data"
    names = ["movieId", "title", "release", "video_release", "imdb_url", *ML100K_GENRES]
    mf = read_table(items_path, sep="|", names=names, header=False, encoding="latin-1")
    check_no_blank_rows(mf, items_path, "movieId")
    ids = numeric_column(mf, "movieId", items_path, integer=True)
    flags = mf[ML100K_GENRES].to_numpy() == "1"
    genres = [tuple(g for g, on in zip(ML100K_GENRES, row) if on and g != "unknown") for row in flags]
    movies = _movies_frame(ids, mf["title"], genres, items_path, mf)
    rf = read_number_table(data_path, sep="\t", names=["user_id", "movie_id", "rating", "timestamp"],
                           dtypes=["int64", "int64", "float64", "int64"], header=False)
    ratings = _ratings_frame(rf, data_path, WHOLE_STARS)
    return RawMovieLens(movies, ratings, _no_tags(), _no_links(), [items_path, data_path])


def _no_tags() -> pd.DataFrame:
    return pd.DataFrame({"movie_id": pd.Series(dtype=np.int64), "tag": pd.Series(dtype=str)})


def _no_links() -> pd.DataFrame:
    return pd.DataFrame({"imdb_id": pd.Series(dtype=object), "tmdb_id": pd.Series(dtype=object)})


READERS = {
    "ml-latest-small": read_csv_format,
    "ml-25m": read_csv_format,
    "ml-1m": read_ml1m,
    "ml-100k": read_ml100k,
}
