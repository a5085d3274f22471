"""Each MovieLens format, built here as a tiny fixture, becomes the same canonical dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec.data import DataError, DataFormatError, load_dataset
from movierec.data.movielens import parse_year
from movierec.settings import Settings


def _settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", shared_dir=None, mmtf_dir=None)


def write_csv_format(root: Path, ratings: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "movies.csv").write_text(
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children\n"
        '2,"Mask, The (1994)",Action|Comedy\n'
        "3,Untitled Thing,(no genres listed)\n"
    )
    (root / "ratings.csv").write_text(ratings if ratings is not None else (
        "userId,movieId,rating,timestamp\n"
        "1,1,4.0,100\n"
        "1,2,3.5,200\n"
        "2,1,5.0,150\n"
        "2,99,2.0,160\n"      # unknown movie: dropped and counted
        "1,1,2.0,300\n"       # re-rating: the later one wins
    ))
    (root / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,1,pixar,1\n2,1,Pixar,2\n2,1,toys,3\n1,42,ghost,4\n")
    (root / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0114709,862\n2,0110475,854\n3,0000001,\n")
    return root


def test_csv_format_becomes_canonical_dataset(tmp_path):
    root = write_csv_format(tmp_path / "ml-latest-small")
    ds = load_dataset(_settings(tmp_path), dataset_dir=root, dataset_format="ml-latest-small")
    assert list(ds.catalog.index) == [1, 2, 3]
    toy = ds.catalog.loc[1]
    assert toy["year"] == 1995 and toy["genres"] == ("Adventure", "Animation", "Children")
    assert toy["tags"][0].lower() == "pixar" and "toys" in toy["tags"] and len(toy["tags"]) == 2
    assert toy["imdb_id"] == "0114709" and toy["tmdb_id"] == "862"
    assert ds.catalog.loc[3, "genres"] == () and np.isnan(ds.catalog.loc[3, "year"])
    assert len(ds.ratings) == 3
    assert ds.ratings.query("user_id == 1 and movie_id == 1")["rating"].item() == 2.0
    assert ds.report.duplicate_ratings == 1
    assert ds.report.unknown_movie_ratings == 1
    assert ds.report.unknown_movie_tags == 1
    assert any("posters" in m for m in ds.report.missing_optional)


def test_ml1m_format(tmp_path):
    root = tmp_path / "ml-1m"
    root.mkdir()
    (root / "movies.dat").write_bytes("1::Toy Story (1995)::Animation|Children's|Comedy\n2::Amélie (2001)::Comedy|Romance\n".encode("latin-1"))
    (root / "ratings.dat").write_text("1::1::5::978300760\n1::2::3::978302109\n2::2::4::978301968\n")
    ds = load_dataset(_settings(tmp_path), dataset_dir=root, dataset_format="ml-1m")
    assert ds.catalog.loc[2, "title"] == "Amélie (2001)"
    assert ds.catalog.loc[1, "genres"] == ("Animation", "Children's", "Comedy")
    assert ds.ratings["rating"].tolist() == [5.0, 3.0, 4.0]


def test_ml100k_format(tmp_path):
    root = tmp_path / "ml-100k"
    root.mkdir()
    flags_toy = ["0", "0", "0", "1", "1", "1"] + ["0"] * 13
    flags_gold = ["0", "1", "1"] + ["0"] * 13 + ["1", "0", "0"]
    (root / "u.item").write_bytes(
        ("1|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(flags_toy) + "\n"
         "2|GoldenEye (1995)|01-Jan-1995||http://y|" + "|".join(flags_gold) + "\n").encode("latin-1"))
    (root / "u.data").write_text("196\t1\t3\t881250949\n186\t2\t3\t891717742\n")
    ds = load_dataset(_settings(tmp_path), dataset_dir=root, dataset_format="ml-100k")
    assert ds.catalog.loc[1, "genres"] == ("Animation", "Children", "Comedy")
    assert ds.catalog.loc[2, "genres"] == ("Action", "Adventure", "Thriller")
    assert len(ds.ratings) == 2 and set(ds.ratings["user_id"]) == {196, 186}


def test_ml25m_uses_the_csv_reader(tmp_path):
    root = write_csv_format(tmp_path / "ml-25m")
    ds = load_dataset(_settings(tmp_path), dataset_dir=root, dataset_format="ml-25m")
    assert ds.name == "ml-25m" and len(ds.ratings) == 3


@pytest.mark.parametrize(
    ("ratings", "line", "words"),
    [
        ("userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,abc,200\n", 3, "rating not a number"),
        ("userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,3.5\n", 3, "timestamp missing"),
        ("userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,7.0,200\n", 3, "outside the scale"),
        ("userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,4.25,200\n", 3, "outside the scale"),
        ("userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,4.0,200,9,9\n", 3, "wrong number of fields"),
        ("userId,movieId,rating,timestamp\n1,1.5,4.0,100\n", 2, "must be an integer"),
        ("user,item,score\n1,1,4.0\n", 1, "header"),
    ],
)
def test_malformed_ratings_name_file_line_and_problem(tmp_path, ratings, line, words):
    root = write_csv_format(tmp_path / "ml-latest-small", ratings=ratings)
    with pytest.raises(DataFormatError) as err:
        load_dataset(_settings(tmp_path), dataset_dir=root, dataset_format="ml-latest-small")
    assert err.value.path.name == "ratings.csv"
    assert err.value.line == line
    assert words in str(err.value)
    assert f"ratings.csv, line {line}" in str(err.value)


def test_truncated_ml1m_file(tmp_path):
    root = tmp_path / "ml-1m"
    root.mkdir()
    (root / "movies.dat").write_text("1::Toy Story (1995)::Animation\n")
    (root / "ratings.dat").write_text("1::1::5::978300760\n1::1::")
    with pytest.raises(DataFormatError) as err:
        load_dataset(_settings(tmp_path), dataset_dir=root, dataset_format="ml-1m")
    assert err.value.line == 2 and err.value.path.name == "ratings.dat"


def test_unknown_format_and_missing_folder_are_clear(tmp_path):
    with pytest.raises(DataError, match="unknown dataset format 'ml-2b'"):
        load_dataset(_settings(tmp_path), dataset_dir=tmp_path, dataset_format="ml-2b")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(_settings(tmp_path), dataset_dir=tmp_path / "nope", dataset_format="ml-1m")


@pytest.mark.parametrize(("title", "year"), [("Toy Story (1995)", 1995), ("Babylon 5 (1993-1998)", 1993), ("No Year", None), ("(500) Days of Summer (2009)", 2009)])
def test_parse_year(title, year):
    got = parse_year(title)
    assert (np.isnan(got) and year is None) or got == year


def test_a_clean_ratings_file_is_read_as_numbers_and_gives_what_the_strict_reader_gives(tmp_path):
    """The number reader keeps a large file's strings out of memory; a file it cannot read as clean
    numbers goes to the strict reader (the malformed cases above run through it)."""
    from movierec.data.tables import read_number_table, read_table

    path = tmp_path / "ratings.csv"
    path.write_text('userId,movieId,rating,timestamp\n1,1,2.5,1260759144\n1,"2",3.0,1260759179\n7,3,5,1260759182\n')
    names = ["userId", "movieId", "rating", "timestamp"]
    fast = read_number_table(path, sep=",", names=names, dtypes=["int64", "int64", "float64", "int64"], header=True)
    assert [str(t) for t in fast.dtypes] == ["int64", "int64", "float64", "int64"]
    strict = read_table(path, sep=",", names=names, header=True)
    pd.testing.assert_frame_equal(fast, strict.apply(pd.to_numeric).astype(fast.dtypes.to_dict()))
    assert fast.attrs["first_line"] == strict.attrs["first_line"] == 2
    root = write_csv_format(tmp_path / "ml-latest-small", ratings=path.read_text())
    ds = load_dataset(_settings(tmp_path), dataset_dir=root, dataset_format="ml-latest-small")
    assert sorted(ds.ratings["rating"]) == [2.5, 3.0, 5.0]
