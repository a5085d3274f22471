"""Downloads for users with a network: GroupLens archives and TMDB posters.

Nothing here runs unless asked (``movierec data fetch``). Downloads go to ``*.part`` files and
are renamed when complete, so an interrupted fetch resumes by skipping what is already there.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tqdm import tqdm

from movierec.data.errors import DataError

GROUPLENS_BASE = "https://files.grouplens.org/datasets/movielens"
TMDB_API_BASE = "https://api.themoviedb.org/3"
TMDB_IMAGE_BASE = "https://image.tmdb.org/t/p"
ARCHIVES = ("ml-latest-small", "ml-25m", "ml-1m", "ml-100k")


class FetchError(DataError):
    """A download failed in a way the user must fix (bad URL, bad key, no network)."""


def _download(client: httpx.Client, url: str, dest: Path, *, progress: bool) -> None:
    part = dest.with_name(dest.name + ".part")
    with client.stream("GET", url) as resp:
        if resp.status_code != 200:
            raise FetchError(f"GET {url} answered {resp.status_code}")
        total = int(resp.headers.get("content-length", 0)) or None
        with part.open("wb") as fh, tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
            for chunk in resp.iter_bytes(1 << 16):
                fh.write(chunk)
                bar.update(len(chunk))
    part.replace(dest)


def fetch_movielens(name: str, dest_dir: Path, *, base_url: str = GROUPLENS_BASE, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download and unpack one GroupLens archive; returns the dataset folder."""
    if name not in ARCHIVES:
        raise FetchError(f"unknown MovieLens archive {name!r}; known: {', '.join(ARCHIVES)}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    archive = dest_dir / f"{name}.zip"
    folder = dest_dir / name
    if folder.is_dir() and any(folder.iterdir()):
        return folder
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            if not archive.exists():
                _download(client, f"{base_url.rstrip('/')}/{name}.zip", archive, progress=progress)
    except httpx.HTTPError as exc:
        raise FetchError(f"could not download {name}: {exc}") from None
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest_dir)
    except zipfile.BadZipFile:
        archive.unlink()
        raise FetchError(f"{archive} is not a zip archive (removed; fetch again)") from None
    if not folder.is_dir():
        raise FetchError(f"{archive} did not contain a folder named {name}")
    return folder


@dataclass
class PosterFetchReport:
    downloaded: int = 0
    already_present: int = 0
    failed: dict[int, str] = field(default_factory=dict)


def fetch_posters(
    tmdb_ids: dict[int, str],
    dest_dir: Path,
    *,
    api_key: str,
    api_base: str = TMDB_API_BASE,
    image_base: str = TMDB_IMAGE_BASE,
    size: str = "w185",
    progress: bool = True,
    timeout: float = 20.0,
) -> PosterFetchReport:
    """Fetch one poster per movie (``{movie_id}.jpg``) through TMDB's API; failures are recorded."""
    if not api_key:
        raise FetchError("a TMDB API key is needed to fetch posters (--tmdb-api-key or MOVIEREC_TMDB_API_KEY)")
    dest_dir.mkdir(parents=True, exist_ok=True)
    report = PosterFetchReport()
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        for movie_id, tmdb_id in tqdm(sorted(tmdb_ids.items()), desc="posters", unit="movie", disable=not progress):
            dest = dest_dir / f"{movie_id}.jpg"
            if dest.exists():
                report.already_present += 1
                continue
            try:
                meta = client.get(f"{api_base.rstrip('/')}/movie/{tmdb_id}", params={"api_key": api_key})
                if meta.status_code == 401:
                    raise FetchError("TMDB refused the API key (401)")
                if meta.status_code != 200:
                    report.failed[movie_id] = f"metadata answered {meta.status_code}"
                    continue
                poster = meta.json().get("poster_path")
                if not poster:
                    report.failed[movie_id] = "TMDB has no poster"
                    continue
                _download(client, f"{image_base.rstrip('/')}/{size}{poster}", dest, progress=False)
                report.downloaded += 1
            except (httpx.HTTPError, FetchError) as exc:
                if isinstance(exc, FetchError) and "API key" in str(exc):
                    raise
                report.failed[movie_id] = str(exc)
    return report
