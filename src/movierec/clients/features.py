"""Client of the feature-extractor: every modality vector of a new movie from its text, poster
and audio (``POST /v1/movies/{id}/features``, multipart)."""

from __future__ import annotations

from movierec.clients.base import ServiceClient
from movierec.contracts.features import MovieFeatures


class FeatureExtractorClient(ServiceClient):
    service = "feature-extractor"

    async def extract(
        self,
        movie_id: int,
        *,
        title: str,
        genres: list[str] = (),
        tags: list[str] = (),
        plot: str | None = None,
        year: int | None = None,
        poster: tuple[str, bytes, str] | None = None,
        audio: tuple[str, bytes, str] | None = None,
    ) -> MovieFeatures:
        """``poster``/``audio``: (filename, bytes, content type) uploads."""
        data = {"title": title, "genres": "|".join(genres), "tags": ",".join(tags)}
        if plot:
            data["plot"] = plot
        if year is not None:
            data["year"] = str(year)
        files = {name: f for name, f in (("poster", poster), ("audio", audio)) if f is not None}
        response = await self.request("POST", f"/v1/movies/{int(movie_id)}/features", data=data, files=files or None)
        return MovieFeatures.model_validate(response.json())

    async def get(self, movie_id: int) -> MovieFeatures:
        return MovieFeatures.model_validate((await self.request("GET", f"/v1/movies/{int(movie_id)}/features")).json())
