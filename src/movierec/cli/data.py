"""``movierec data``: summary, splits, fetch."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from movierec.cli.errors import fail_on_data_error
from movierec.data import load_dataset
from movierec.data.fetch import ARCHIVES, GROUPLENS_BASE, TMDB_API_BASE, TMDB_IMAGE_BASE, fetch_movielens, fetch_posters
from movierec.data.splits import SPLIT_KINDS, get_split
from movierec.data.summary import coverage
from movierec.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Load, summarise, split and fetch MovieLens data.")
console = Console()


@app.command()
@fail_on_data_error
def summary() -> None:
    """Print ratings, users, movies and per-modality coverage."""
    ds = load_dataset()
    r = ds.ratings
    console.print(f"[bold]{ds.name}[/bold] (version {ds.version}): {len(r):,} ratings, "
                  f"{r['user_id'].nunique():,} users, {len(ds.catalog):,} movies, "
                  f"ratings {r['rating'].min():g}..{r['rating'].max():g}")
    table = Table(title="Modality coverage")
    for col in ("modality", "movies", "share of movies", "share of ratings", "dim"):
        table.add_column(col, justify="left" if col == "modality" else "right")
    for row in coverage(ds):
        feats = ds.trailer_features.get(row.modality.removeprefix("trailer_"))
        dim = str(feats.dim) if feats is not None and row.modality.startswith("trailer_") else ""
        table.add_row(row.modality, f"{row.movies:,}", f"{row.movie_share:.1%}", f"{row.rating_share:.1%}", dim)
    console.print(table)
    for line in ds.report.lines():
        console.print(f"[yellow]note:[/yellow] {line}")


@app.command()
@fail_on_data_error
def splits(seeds: list[int] = typer.Option([0, 1, 2], "--seed", help="Seeds for the seeded splits.")) -> None:
    """Create (or verify) the saved random, temporal and cold-item splits."""
    ds = load_dataset()
    out = get_settings().splits_dir
    for kind in SPLIT_KINDS:
        for seed in (seeds if kind != "temporal" else [0]):
            s = get_split(ds, kind, seed, out)
            console.print(f"{kind:10s} seed {seed}: {len(s.train_idx):,} train / {len(s.test_idx):,} test"
                          + (f", {len(s.cold_movie_ids):,} cold movies" if len(s.cold_movie_ids) else ""))
    console.print(f"saved under {out / ds.name}")


@app.command()
@fail_on_data_error
def fetch(
    dataset: str = typer.Argument("ml-latest-small", help=f"One of: {', '.join(ARCHIVES)}"),
    dest: Path = typer.Option(None, help="Folder for archives (default: $MOVIEREC_HOME/datasets)."),
    posters: bool = typer.Option(False, help="Also fetch TMDB posters into the poster folder."),
    tmdb_api_key: str = typer.Option("", envvar="MOVIEREC_TMDB_API_KEY", help="TMDB API key for posters."),
    base_url: str = typer.Option(GROUPLENS_BASE, help="Where the GroupLens archives are served."),
    tmdb_api_base: str = typer.Option(TMDB_API_BASE),
    tmdb_image_base: str = typer.Option(TMDB_IMAGE_BASE),
) -> None:
    """Download a GroupLens archive and, with a TMDB key, posters. Needs a network."""
    settings = get_settings()
    folder = fetch_movielens(dataset, dest or settings.home / "datasets", base_url=base_url)
    console.print(f"{dataset} is in {folder}; use it with MOVIEREC_DATASET_DIR={folder} MOVIEREC_DATASET_FORMAT={dataset}")
    if posters:
        poster_dir = settings.poster_dir or settings.home / "posters"
        ds = load_dataset(dataset_dir=folder, dataset_format=dataset)
        ids = {int(m): str(t) for m, t in ds.catalog["tmdb_id"].dropna().items()}
        rep = fetch_posters(ids, poster_dir, api_key=tmdb_api_key, api_base=tmdb_api_base, image_base=tmdb_image_base)
        console.print(f"posters: {rep.downloaded} downloaded, {rep.already_present} already there, {len(rep.failed)} failed -> {poster_dir}")
