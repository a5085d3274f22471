"""Why a movie was recommended, in words a person reads: the modalities that drove the match
(the fusion model's attention), the user's liked movie it is nearest to, and what the two share."""

from __future__ import annotations

from movierec.contracts.recommendations import BecauseYouLiked, Explanation, ModalityWeight
from movierec.serving.catalog import MovieCatalog

MODALITY_WORDS = {
    "text": "its story and tags",
    "poster": "its poster",
    "audio": "its trailer sound",
    "trailer_ivector": "its trailer audio",
    "trailer_avf": "its trailer's look",
    "id": "what similar viewers rated",
}
"""How each modality reads in a sentence; unknown modalities read as their name."""

MAX_MODALITIES = 3
MAX_SHARED_TAGS = 5


def explain(
    catalog: MovieCatalog,
    movie_id: int,
    attention: dict[str, float],
    because: tuple[int, float] | None,
    liked_ids: list[int] = (),
) -> Explanation:
    """Explain one recommended movie.

    ``attention``: the fusion model's weights over this movie's modalities; ``because``: the
    user's most similar liked movie and its similarity; ``liked_ids``: the user's liked movies,
    whose genres and tags are compared when ``because`` is unknown."""
    movie = catalog.get(movie_id)
    modalities = [ModalityWeight(name=n, weight=round(w, 3)) for n, w in sorted(attention.items(), key=lambda kv: -kv[1]) if w > 0][:MAX_MODALITIES]
    liked = catalog.get(because[0]) if because else None
    reference = [liked] if liked else [m for m in (catalog.get(i) for i in liked_ids) if m is not None]
    shared_genres: list[str] = []
    shared_tags: list[str] = []
    if movie is not None and reference:
        ref_genres = {g for r in reference for g in r.genres}
        ref_tags = {t.lower() for r in reference for t in r.tags}
        shared_genres = [g for g in movie.genres if g in ref_genres]
        shared_tags = [t for t in movie.tags if t.lower() in ref_tags][:MAX_SHARED_TAGS]
    because_you_liked = BecauseYouLiked(movie_id=liked.movie_id, title=liked.title, similarity=because[1]) if liked else None
    return Explanation(
        text=_sentence(because_you_liked, modalities, shared_genres, shared_tags),
        modalities=modalities,
        because_you_liked=because_you_liked,
        shared_genres=shared_genres,
        shared_tags=shared_tags,
    )


def explain_popular(catalog: MovieCatalog, movie_id: int) -> Explanation:
    movie = catalog.get(movie_id)
    count = movie.rating_count if movie else 0
    avg = f", average {movie.average_rating:.1f}" if movie and movie.average_rating else ""
    return Explanation(text=f"Popular with viewers ({count} ratings{avg}).")


def _sentence(because: BecauseYouLiked | None, modalities: list[ModalityWeight], genres: list[str], tags: list[str]) -> str:
    parts = []
    if because:
        parts.append(f"Because you liked {because.title}")
    if genres or tags:
        shared = ", ".join(genres + [f"'{t}'" for t in tags])
        parts.append(f"shares {shared}")
    if modalities:
        words = " and ".join(f"{MODALITY_WORDS.get(m.name, m.name)} ({m.weight:.0%})" for m in modalities[:2])
        parts.append(f"matched mostly on {words}")
    if not parts:
        return "A strong match for your ratings."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
