"""What giving new movies a share of the top 20 would gain and cost, measured on validation data.

The served score ranks a movie no one has rated by its content alone, and the quality report shows
that no such movie reaches any user's top 20 among the whole catalog (``cold_catalog_recall@20``
0.000). This measures the remedy the ranker can switch on (``MOVIEREC_RANKER_NEW_MOVIE_SHARE``):
per user, each new movie is placed at the warm movies' score at the same rank quantile
(``place_new_movies``, the rule of ``movierec.serving.new_movies``), scaled by ``share``
(1.0: new movies get top-20 slots in proportion to their part of the catalog; 0.5: half that; 0:
as served), and reports Recall@20 and NDCG@20 of three sets of held-out likes, each ranked among
the whole catalog: warm (ratings of movies the model was fitted on), new (ratings of movies it
never saw), and both together (what the service's users would see).

Data, per seed, never the test part: the cold-item split's training part is cut into validation
new movies (``cold_validation_split``, as ``validate-modalities`` does); of the remaining fit
ratings a seeded 10% (``validation_slice``) is held out as warm validation likes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from movierec.data import Dataset, load_dataset
from movierec.data.splits import cold_validation_split, get_split, validation_slice
from movierec.evaluation.metrics import ndcg_at_k, recall_at_k, top_k
from movierec.evaluation.peers import ContentNearestNeighbour, RandomRanker
from movierec.evaluation.protocol import K, LIKE, ArtifactScorer, lookup
from movierec.evaluation.quality import UnitCache, unit_key
from movierec.features.store import FeatureStore, FeatureStoreError, ModalityFeatures
from movierec.models.item_content import available_features
from movierec.models.registry import get_model, train_model
from movierec.serving.new_movies import new_movie_slots
from movierec.settings import Settings

SHARES = (0.0, 0.25, 0.5, 1.0)
WARM_SHARE = 0.1
"""Part of the fit ratings held out as warm validation likes."""
SETS = ("warm", "new", "all")
REFERENCES = ("random", "content_nn")
"""Measured in the same run on the same candidates: random order, and the content
nearest-neighbour peer on text features (``movierec.evaluation.peers``)."""


def place_new_movies(scores: np.ndarray, new: np.ndarray, allowed: np.ndarray, share: float) -> np.ndarray:
    """``scores`` (users, movies) with each allowed new movie's score replaced by the rule of
    ``movierec.serving.new_movies``: just below the warm movie it is placed under, or below every
    warm movie, in its own order. ``share`` 0 leaves ``scores`` as they are."""
    out = np.array(scores, dtype=np.float64, copy=True)
    if share <= 0:
        return out
    for row in range(out.shape[0]):
        warm = np.flatnonzero(allowed[row] & ~new)
        fresh = np.flatnonzero(allowed[row] & new)
        if len(warm) == 0 or len(fresh) == 0:
            continue
        warm_sorted = np.sort(out[row, warm])[::-1]
        order = fresh[np.argsort(-out[row, fresh], kind="stable")]
        at = new_movie_slots(len(warm), len(fresh), share)
        below_all = warm_sorted[-1] - 1.0 - np.arange(len(fresh))
        out[row, order] = np.where(at < len(warm), np.nextafter(warm_sorted[np.minimum(at, len(warm) - 1)], -np.inf), below_all)
    return out


def _likes(ratings: pd.DataFrame) -> dict[int, set[int]]:
    liked = ratings[ratings["rating"] >= LIKE]
    return {int(u): set(g["movie_id"].astype(int)) for u, g in liked.groupby("user_id")}


def _recall_ndcg(scores: np.ndarray, users: np.ndarray, catalog: np.ndarray, positives: dict[int, set[int]]) -> dict[str, float]:
    best = top_k(scores, K)
    rows = [r for r, u in enumerate(users) if positives.get(int(u))]
    ranked = [catalog[best[r]] for r in rows]
    likes = [positives[int(users[r])] for r in rows]
    return {f"recall@{K}": float(np.mean([recall_at_k(x, p, K) for x, p in zip(ranked, likes)])),
            f"ndcg@{K}": float(np.mean([ndcg_at_k(x, p, K) for x, p in zip(ranked, likes)])), "users": len(rows)}


def measure_seed(settings: Settings, ds: Dataset, features: dict[str, ModalityFeatures], seed: int, shares: list[float],
                 overrides: dict, progress: bool) -> dict:
    """Train on one seed's fit data; measure every share and the references on the same candidates
    (``shares`` / ``references``: ``{share or name: {set: metrics}}``). ``features`` holds text."""
    catalog = ds.catalog.index.to_numpy(np.int64)
    split = cold_validation_split(ds, get_split(ds, "cold-item", seed, settings.splits_dir))
    fit_part, new_likes = split.train(ds), split.test(ds)
    held = validation_slice(len(fit_part), WARM_SHARE, seed)
    fit, warm_likes = fit_part[~held], fit_part[held]
    warm_likes = warm_likes[warm_likes["movie_id"].isin(fit["movie_id"])]
    spec = get_model("fusion")
    trained = train_model(spec, spec.config({**overrides, "seed": seed}), fit, catalog, features, progress=progress)
    users = np.unique(fit["user_id"].to_numpy(np.int64))
    user_rows, cols = lookup(fit["user_id"].to_numpy(np.int64), users), lookup(fit["movie_id"].to_numpy(np.int64), catalog)

    def candidates(scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, np.float64)
        scores[user_rows[cols >= 0], cols[cols >= 0]] = -np.inf  # each user's training movies are not candidates
        return scores

    new = ~np.isin(catalog, fit["movie_id"].to_numpy())
    positives = {"warm": _likes(warm_likes), "new": _likes(new_likes), "all": _likes(pd.concat([warm_likes, new_likes]))}
    out = {"modalities": trained.cfg.modalities, "new_movies": int(new.sum()), "catalog": len(catalog), "shares": {}, "references": {}}
    scores = candidates(ArtifactScorer(trained.export("new-movie-exposure", {})).rank_scores(users, catalog))
    for share in shares:
        placed = place_new_movies(scores, new, np.isfinite(scores), share)
        out["shares"][str(share)] = {name: _recall_ndcg(placed, users, catalog, p) for name, p in positives.items()}
    text = features["text"]
    for name, scorer in (("random", RandomRanker(seed)), ("content_nn", ContentNearestNeighbour(fit, text.movie_ids, text.matrix, text.mask))):
        ranked = candidates(scorer.rank_scores(users, catalog))
        out["references"][name] = {set_name: _recall_ndcg(ranked, users, catalog, p) for set_name, p in positives.items()}
    return out


def run_new_movie_exposure(settings: Settings, seeds: list[int], shares: list[float], overrides: dict,
                           fresh: bool = False, progress: bool = True) -> dict:
    """Every seed (cached, so an interrupted run resumes), then mean and sd over seeds."""
    started = time.perf_counter()
    ds = load_dataset(settings)
    cfg = get_model("fusion").config(overrides)  # a bad key fails before any training
    features = available_features(FeatureStore(settings.features_dir), ds)
    if "text" not in features:
        raise FeatureStoreError("the content nearest-neighbour reference needs text features; build them with `movierec features build -m text`")
    provenance = [f.provenance for _, f in sorted(features.items())]
    cache = UnitCache(settings.home / "new-movie-exposure" / ds.name, fresh)
    per_seed = {}
    for seed in tqdm(seeds, desc="new-movie exposure", unit="seed", disable=not progress):
        key = unit_key(ds.version, "cold-item-validation", seed, provenance, {**cfg.model_dump(), "shares": list(shares), "warm_share": WARM_SHARE}, SETS, REFERENCES)
        per_seed[seed] = cache.run(f"seed{seed}", key, lambda: measure_seed(settings, ds, features, seed, shares, overrides, progress))
    rows = [(str(share), "shares", str(share)) for share in shares] + [(name, "references", name) for name in REFERENCES]
    summary = {}
    for row, part, key in rows:
        summary[row] = {}
        for name in SETS:
            cells = {}
            for metric in (f"recall@{K}", f"ndcg@{K}"):
                values = [per_seed[s][part][key][name][metric] for s in seeds]
                cells[metric] = {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None}
            summary[row][name] = cells
    return {"dataset": ds.name, "data_version": ds.version, "seeds": list(seeds), "shares": list(shares),
            "config": cfg.model_dump(), "per_seed": {str(s): v for s, v in per_seed.items()}, "summary": summary,
            "wall_seconds": time.perf_counter() - started}


def _cell(cell: dict) -> str:
    return f"{cell['mean']:.4f} ± {cell['sd']:.4f}" if cell["sd"] is not None else f"{cell['mean']:.4f}"


def write_new_movie_exposure(result: dict, out: Path, command: str) -> tuple[Path, Path]:
    """reports/new_movie_exposure.json (everything) and .md (command, table, how to read it)."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "new_movie_exposure.json", out / "new_movie_exposure.md"
    json_path.write_text(json.dumps({"command": command, **result}, indent=1) + "\n")
    modalities = sorted({"+".join(v["modalities"]) or "id-only" for v in result["per_seed"].values()})
    sizes = ", ".join(f"seed {s}: {v['new_movies']:,} of {v['catalog']:,} movies unrated in the fit data" for s, v in result["per_seed"].items())
    header = " | ".join(f"{name} Recall@{K} | {name} NDCG@{K}" for name in SETS)
    labels = {"random": "random order (reference)", "content_nn": "content nearest-neighbour, text (reference)"}
    rows = [f"| {labels.get(row, 'share ' + row)} | " + " | ".join(f"{_cell(cells[name][f'recall@{K}'])} | {_cell(cells[name][f'ndcg@{K}'])}" for name in SETS) + " |"
            for row, cells in result["summary"].items()]
    served = result["summary"].get("0.0")
    reading = []
    if served is not None:
        recall = f"recall@{K}"
        for share in result["shares"]:
            if share > 0:
                cells = result["summary"][str(share)]
                change = {name: cells[name][recall]["mean"] / served[name][recall]["mean"] - 1 for name in ("warm", "all")}
                reading.append(f"- share {share}: new-movie Recall@{K} {cells['new'][recall]['mean']:.4f} (as served "
                               f"{served['new'][recall]['mean']:.4f}); warm {change['warm']:+.1%}, all {change['all']:+.1%} against share 0.")
    md_path.write_text("\n".join([
        "# New movies in the top 20: what a share of the slots gains and costs",
        "",
        f"Command: `{command}`  ",
        f"Seeds: {result['seeds']}; wall time {result['wall_seconds'] / 60:.1f} min; dataset `{result['dataset']}` "
        f"(version `{result['data_version']}`). Mean ± sd over seeds.",
        "",
        "Validation data only: per seed, the cold-item split's training part loses a further 10% of its movies with all "
        f"their ratings (validation new movies), and {WARM_SHARE:.0%} of the remaining ratings (warm validation likes). The "
        f"fusion model (default settings; modalities fused: {', '.join(modalities)}) is fitted on the rest; every held-out like is ranked among the whole catalog "
        f"minus the user's fit movies. Share 0 is the model as served. Share s places each user's new movies at the warm "
        "movies' score quantile, scaled by s (1.0: top-20 slots in proportion to their part of the catalog). "
        f"Unrated movies: {sizes} (the validation new movies, the split's test movies and movies rated only in the warm "
        "validation part).",
        "",
        f"| ranking | {header} |",
        "|---|" + "---|" * (2 * len(SETS)),
        *rows,
        "",
        "`warm`: likes of movies the model was fitted on; `new`: likes of movies it never saw; `all`: both, as a user of "
        "the service meets them. The reference rows rank the same candidates for the same users in the same run.",
        "",
        *reading,
        "",
    ]))
    return json_path, md_path
