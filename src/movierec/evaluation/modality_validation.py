"""Which modalities the fusion model fuses by default, chosen on validation data, never on test.

For each seed, the cold-item split's training part is cut again (``cold_validation_split``): a
seeded 10% of its movies leave the fit data with all their ratings and become validation cold
movies. One collaborative stage is fitted per seed and shared by every modality subset, so the
subsets differ only in their content stage; each is measured with the report's own protocol
(``cold_split_metrics``: rank only the validation cold movies for each user who liked one; and,
for the record, rank them among the whole catalog).

Each (seed, subset) result is cached like the quality run's units, so an interrupted run resumes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from movierec.data import load_dataset
from movierec.data.splits import COLD_ITEM_SHARE, cold_validation_split, get_split
from movierec.evaluation.protocol import COLD_SPLIT_METRICS, K, ArtifactScorer, cold_split_metrics
from movierec.evaluation.quality import CollaborativeStages, UnitCache, unit_key
from movierec.features.store import FeatureStore, FeatureStoreError, ModalityFeatures
from movierec.models.item_content import available_features
from movierec.models.registry import ModelConfigError, get_model, train_model
from movierec.settings import Settings

CANDIDATE_MODALITIES: tuple[str, ...] = ("text", "poster", "trailer_ivector", "trailer_avf")
"""The modalities the default is chosen among (audio has no built features yet)."""
METRICS = COLD_SPLIT_METRICS
RECALL, NDCG = METRICS[:2]
"""The decision uses ``RECALL``; the whole-catalog figures are recorded beside it."""
DECISION_RULE = (
    f"The default modality set is the subset with the highest mean validation cold Recall@{K} among "
    "{all candidate modalities, each leave-one-out set}. A set whose mean is within one (sample) standard "
    "deviation over seeds of the best set's mean ties with it, and ties go to the larger set (then to "
    "the higher mean). If the winner is all candidate modalities, FusionConfig keeps modalities=None "
    "(every modality in the store); otherwise its default becomes the winning list."
)
"""Written down before the first run; the report and FusionConfig's docstring quote it."""


@dataclass
class ModalityValidationPlan:
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    modalities: list[str] = field(default_factory=lambda: list(CANDIDATE_MODALITIES))
    overrides: dict = field(default_factory=dict)
    """Fusion hyperparameters other than ``modalities`` and ``seed``, which the run sets."""


def label(subset: list[str]) -> str:
    return "+".join(subset) or "id-only"


def modality_grid(names: list[str]) -> list[list[str]]:
    """Each modality alone, all of them, all minus each one, and text+trailer_ivector+trailer_avf
    (all but the poster), in that order and without repeats."""
    grid = [[m] for m in names] + [list(names)] + [[m for m in names if m != left] for left in names if len(names) > 2]
    without_poster = [m for m in names if m in ("text", "trailer_ivector", "trailer_avf")]
    if len(without_poster) == 3:
        grid.append(without_poster)
    out: list[list[str]] = []
    for subset in grid:
        if subset not in out:
            out.append(subset)
    return out


def require_modalities(features: dict[str, ModalityFeatures], names: list[str], where: Path) -> dict[str, ModalityFeatures]:
    """The named modalities, complete; a missing or half-built one is an error saying how to build it."""
    for name in names:
        if name not in features:
            raise FeatureStoreError(f"modality {name} is not in the feature store {where}; build it with "
                                    f"`movierec features build -m {name}`")
        prov = features[name].provenance
        if not prov.get("complete", True):
            raise FeatureStoreError(f"modality {name} is only partly built ({prov.get('pending', '?')} movies pending; a build "
                                    f"may still be running); finish it with `movierec features build -m {name}`")
    return {m: features[m] for m in names}


def choose_default(summary: dict[str, dict], names: list[str]) -> dict:
    """Apply ``DECISION_RULE`` to ``summary`` (label -> {"modalities", "mean", "sd"})."""
    candidates = [list(names)] + [[m for m in names if m != left] for left in names if len(names) > 1]
    rows = [summary[label(c)] for c in candidates]
    best = max(rows, key=lambda r: r["mean"][RECALL])
    margin = best["sd"][RECALL] or 0.0
    tied = [r for r in rows if r["mean"][RECALL] >= best["mean"][RECALL] - margin]
    winner = max(tied, key=lambda r: (len(r["modalities"]), r["mean"][RECALL]))
    everything = sorted(winner["modalities"]) == sorted(CANDIDATE_MODALITIES)
    return {
        "rule": DECISION_RULE, "candidates": [label(c) for c in candidates], "best": label(best["modalities"]),
        "tied_with_best": [label(r["modalities"]) for r in tied], "winner": label(winner["modalities"]),
        "default_modalities": None if everything else winner["modalities"],
    }


def _spread(values: list[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def run_modality_validation(settings: Settings, plan: ModalityValidationPlan, fresh: bool = False, progress: bool = True) -> dict:
    """Validation cold Recall@K and NDCG@K of every subset in ``modality_grid``, per seed and summarised."""
    for key in ("modalities", "seed"):
        if key in plan.overrides:
            raise ModelConfigError(f"{key} is set by the validation run itself; choose modalities with -m and seeds with --seed")
    started = time.perf_counter()
    ds = load_dataset(settings)
    features = require_modalities(available_features(FeatureStore(settings.features_dir), ds), plan.modalities, settings.features_dir)
    catalog = ds.catalog.index.to_numpy(np.int64)
    spec = get_model("fusion")
    spec.config(plan.overrides)  # a bad key fails before any training
    cache = UnitCache(settings.home / "modality-validation" / ds.name, fresh)
    stages = CollaborativeStages()
    grid = modality_grid(plan.modalities)
    per_seed: dict[str, dict[str, list[float]]] = {label(s): {m: [] for m in METRICS} for s in grid}
    validation: dict[str, dict] = {}

    bar = tqdm(total=len(plan.seeds) * len(grid), desc="modality validation", unit="subset", disable=not progress)
    for seed in plan.seeds:
        split = cold_validation_split(ds, get_split(ds, "cold-item", seed, settings.splits_dir))
        fit, held = split.train(ds), split.test(ds)
        validation[str(seed)] = {"fit_ratings": len(fit), "validation_movies": len(split.cold_movie_ids), "validation_ratings": len(held)}
        for subset in grid:
            cfg = spec.config({**plan.overrides, "modalities": subset, "seed": seed})
            bar.set_postfix_str(f"seed {seed} {label(subset)}")

            def compute() -> dict:
                # every subset starts its content stage from the same ID-only collaborative model,
                # so a subset's figure does not depend on which subset happened to run first
                collaborative = stages.train(spec, cfg.model_copy(update={"modalities": []}), f"cold-item-validation-{seed}",
                                             fit, catalog, features, progress)
                trained = train_model(spec, cfg, fit, catalog, features, progress=progress, collaborative=collaborative)
                return cold_split_metrics(ArtifactScorer(trained.export("validate", {})), fit, held, split.cold_movie_ids, catalog)

            key = unit_key(ds.version, split.kind, seed, [features[m].provenance for m in subset], cfg.model_dump(), COLD_SPLIT_METRICS)
            m = cache.run(f"{label(subset)}-seed{seed}", key, compute)
            for metric in METRICS:
                per_seed[label(subset)][metric].append(m[metric])
            validation[str(seed)]["users"] = m["users"]
            bar.update()
            bar.write(f"seed {seed} {label(subset):36s} " + "  ".join(f"{k} {m[k]:.4f}" for k in METRICS) + f"  ({m['seconds']:.0f}s)")
    bar.close()

    summary = {
        label(s): {"modalities": s, "per_seed": per_seed[label(s)],
                   "mean": {k: float(np.mean(v)) for k, v in per_seed[label(s)].items()},
                   "sd": {k: _spread(v) for k, v in per_seed[label(s)].items()}}
        for s in grid
    }
    return {
        "dataset": ds.name, "data_version": ds.version, "seeds": plan.seeds, "validation_share": COLD_ITEM_SHARE,
        "validation": validation, "config": spec.config(plan.overrides).model_dump(exclude={"modalities", "seed"}),
        "features": {m: {"coverage": float(f.aligned(catalog)[1].mean()), "dim": f.dim, "encoder": f.provenance.get("encoder", f.provenance.get("source"))}
                     for m, f in features.items()},
        "subsets": summary, "decision": choose_default(summary, plan.modalities),
        "wall_seconds": time.perf_counter() - started,
    }


def format_cell(mean: float, sd: float | None) -> str:
    return f"{mean:.3f} ± {sd:.3f}" if sd is not None else f"{mean:.3f}"


def write_modality_validation(result: dict, out: Path, command: str) -> tuple[Path, Path]:
    """reports/modality_validation.json (everything) and .md (command, table, rule, decision)."""
    out.mkdir(parents=True, exist_ok=True)
    doc = {"command": command, **result}
    json_path, md_path = out / "modality_validation.json", out / "modality_validation.md"
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    d = result["decision"]
    rows = [f"| {name} | " + " | ".join(format_cell(s["mean"][k], s["sd"][k]) for k in METRICS) + " |"
            for name, s in result["subsets"].items()]
    sizes = ", ".join(f"seed {k}: {v['validation_movies']} movies, {v['validation_ratings']:,} ratings, {v['users']} users"
                      for k, v in result["validation"].items())
    default = "`modalities=None` (every modality in the store)" if d["default_modalities"] is None \
        else f"`modalities={json.dumps(d['default_modalities'])}`"
    lines = [
        "# Default modalities, chosen on validation data",
        "",
        f"Command: `{command}`  ",
        f"Seeds: {result['seeds']}; wall time {result['wall_seconds'] / 60:.1f} min; dataset `{result['dataset']}` "
        f"(version `{result['data_version']}`).",
        "",
        f"For each seed, the cold-item split's training part only: a further {result['validation_share']:.0%} of its movies "
        "is held out with all its ratings (validation cold movies; the split's test movies are never among them). One "
        "collaborative stage per seed is shared by every subset; each subset then fits its content stage and ranks only the "
        f"validation cold movies for each user who liked one (the report's cold-item protocol). The last two columns rank "
        "them among the whole catalog instead, as the service meets a new movie (recorded, not used by the rule). "
        f"Validation: {sizes}.",
        "",
        "Features: " + ", ".join(f"{m} ({v['coverage']:.0%} of movies, dim {v['dim']})" for m, v in result["features"].items()) + ".",
        "",
        f"| modalities | validation cold Recall@{K} | validation cold NDCG@{K} | in the whole catalog: Recall@{K} | NDCG@{K} |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Mean ± sample standard deviation over seeds.",
        "",
        "## Decision rule (fixed before the first run)",
        "",
        DECISION_RULE,
        "",
        "## Decision",
        "",
        f"Candidates: {', '.join(d['candidates'])}. Highest mean: {d['best']}; within one standard deviation of it: "
        f"{', '.join(d['tied_with_best'])}. Winner: **{d['winner']}**, so by the rule FusionConfig's default should be {default}.",
        "",
    ]
    md_path.write_text("\n".join(lines))
    return json_path, md_path
