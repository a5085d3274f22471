"""``movierec model``: list, train, validate, validate-modalities, report."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from movierec.cli.overrides import parse_set_pairs
from movierec.cli.errors import fail_on_data_error
from movierec.data import load_dataset
from movierec.data.splits import get_split, validation_slice
from movierec.evaluation.new_movie_exposure import SETS, SHARES, run_new_movie_exposure, write_new_movie_exposure
from movierec.evaluation.protocol import ArtifactScorer, rating_metrics, topk_metrics
from movierec.features.store import FeatureStore
from movierec.models.checkpoint import save_trained
from movierec.models.item_content import available_features
from movierec.models.registry import REGISTRY, ModelConfigError, get_model, train_model
from movierec.settings import REPO_ROOT, get_settings

app = typer.Typer(no_args_is_help=True, help="Train, validate and evaluate the recommenders.")
console = Console()

SET_HELP = "Hyperparameter override KEY=VALUE (VALUE read as JSON when it parses, e.g. epochs=20, modalities='[\"text\"]'). Repeatable."


def parse_overrides(pairs: list[str], config_file: Path | None) -> dict:
    out: dict = {}
    if config_file is not None:
        if not config_file.exists():
            raise ModelConfigError(f"--config: {config_file} does not exist")
        try:
            out.update(json.loads(config_file.read_text()))
        except json.JSONDecodeError as exc:
            raise ModelConfigError(f"--config: {config_file} is not JSON ({exc})") from None
    out.update(parse_set_pairs(pairs, ModelConfigError))
    return out


def rerun_command(argv: list[str], drop_options: tuple[str, ...] = (), drop_flags: tuple[str, ...] = ()) -> str:
    """The command line that regenerates a result: ``argv`` without where to write and how to run
    (``drop_options`` take a value, as ``--out X`` or ``--out=X``; ``drop_flags`` stand alone)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in drop_options:
            skip = True
        elif not arg.startswith(tuple(f"{o}=" for o in drop_options)) and arg not in drop_flags:
            kept.append(arg)
    return "movierec " + " ".join(shlex.quote(a) for a in kept)


@app.command("list")
def list_models() -> None:
    """Registered in-house models and the data each needs."""
    table = Table()
    for col in ("name", "needs", "description"):
        table.add_column(col)
    for spec in REGISTRY.values():
        table.add_row(spec.name, ", ".join(sorted(spec.requires)), spec.description)
    console.print(table)


@app.command()
@fail_on_data_error
def train(
    model: str = typer.Option("fusion", help="Registered model name (see `movierec model list`)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    config: Path = typer.Option(None, help="JSON file of hyperparameters (before --set)."),
    holdout: float = typer.Option(0.05, min=0.0, max=0.5, help="Share of ratings held out to measure the saved model."),
) -> None:
    """Train on all ratings (minus a seeded holdout) and export the serving artifact and checkpoint."""
    settings = get_settings()
    spec = get_model(model)
    cfg = spec.config(parse_overrides(set_, config))
    ds = load_dataset(settings)
    features = available_features(FeatureStore(settings.features_dir), ds)
    ratings = ds.ratings
    held = validation_slice(len(ratings), holdout, cfg.seed)
    fit, valid = ratings[~held], ratings[held]
    catalog = ds.catalog.index.to_numpy(np.int64)
    trained = train_model(spec, cfg, fit, catalog, features, valid=valid if len(valid) else None)
    metrics = {}
    if len(valid):
        scorer = ArtifactScorer(trained.export("holdout", {}))
        metrics = {**rating_metrics(scorer, valid), **topk_metrics(scorer, fit, valid, catalog)}
    version = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = settings.models_dir / spec.name
    art = save_trained(trained, folder, version, {
        "model": spec.name, "data_version": ds.version, "dataset": ds.name, "holdout_share": holdout,
        "metrics": metrics, "train_seconds": trained.train_seconds,
    })
    console.print(f"{spec.name} {version}: {len(art.movie_ids):,} movies, {len(art.user_ids):,} users, dim {art.dim}, "
                  f"modalities {', '.join(art.modality_names) or 'none'}; trained in {trained.train_seconds:.0f}s")
    if metrics:
        console.print("holdout: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "users"))
    console.print(f"artifact: {folder / 'current'}")


def _validation_cut(ds, settings, seed: int, share: float):
    """(fit, validation): the random split's TRAINING part of ``seed``, cut by ``validation_slice``."""
    train_part = get_split(ds, "random", seed, settings.splits_dir).train(ds)
    held = validation_slice(len(train_part), share, seed)
    return train_part[~held], train_part[held]


@app.command("validate-peer")
@fail_on_data_error
def validate_peer(
    name: str = typer.Argument(..., help="A peer of the quality report, e.g. cornac_vbpr."),
    set_: list[str] = typer.Option([], "--set", help="Peer setting override KEY=VALUE (VALUE read as JSON when it parses), "
                                                      "on top of peers.PEER_SETTINGS. Repeatable."),
    seed: int = typer.Option(0, help="Random split whose TRAINING part is cut into fit and validation."),
    share: float = typer.Option(0.1, min=0.01, max=0.5),
) -> None:
    """Tune a peer as ours is tuned (`model validate`): fit on part of a split's training data, score the rest."""
    from movierec.evaluation import peers

    if name not in peers.RATING_PEERS + peers.RANKING_PEERS:
        raise ModelConfigError(f"unknown peer {name!r}; peers: {', '.join(peers.RATING_PEERS + peers.RANKING_PEERS)}")
    overrides = parse_set_pairs(set_, ModelConfigError)
    settings = get_settings()
    ds = load_dataset(settings)
    fit, valid = _validation_cut(ds, settings, seed, share)
    started = time.perf_counter()
    try:
        fitted = peers.fit_peer(name, fit, seed, available_features(FeatureStore(settings.features_dir), ds), overrides)
    except (TypeError, ValueError) as exc:  # a setting the library does not take, or missing features
        raise ModelConfigError(f"{name}: {exc}") from None
    seconds = time.perf_counter() - started
    catalog = ds.catalog.index.to_numpy(np.int64)
    metrics = rating_metrics(fitted, valid) if name in peers.RATING_PEERS else topk_metrics(fitted, fit, valid, catalog)
    typer.echo(json.dumps({"peer": name, "settings": peers.peer_settings(name, overrides), "seed": seed, "share": share,
                              "seconds": round(seconds, 1), **metrics}))


@app.command()
@fail_on_data_error
def validate(
    model: str = typer.Option("fusion"),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    config: Path = typer.Option(None),
    seed: int = typer.Option(0, help="Random split whose TRAINING part is cut into fit and validation."),
    share: float = typer.Option(0.1, min=0.01, max=0.5),
) -> None:
    """Tune here, never on test: fit on part of a split's training data, score the rest."""
    settings = get_settings()
    spec = get_model(model)
    cfg = spec.config(parse_overrides(set_, config))
    ds = load_dataset(settings)
    features = available_features(FeatureStore(settings.features_dir), ds)
    fit, valid = _validation_cut(ds, settings, seed, share)
    catalog = ds.catalog.index.to_numpy(np.int64)
    trained = train_model(spec, cfg, fit, catalog, features, valid=valid)
    scorer = ArtifactScorer(trained.export("validate", {}))
    metrics = {**rating_metrics(scorer, valid), **topk_metrics(scorer, fit, valid, catalog)}
    curve = trained.curves["valid_rmse"]
    typer.echo(json.dumps({"model": spec.name, "overrides": parse_overrides(set_, config), "seconds": round(trained.train_seconds, 1),
                              "best_epoch": int(np.argmin(curve)) + 1, "best_valid_rmse": min(curve), **metrics}))


@app.command("validate-modalities")
@fail_on_data_error
def validate_modalities(
    seeds: list[int] = typer.Option([0, 1, 2], "--seed", help="Cold-item splits whose TRAINING part is cut into fit and validation movies."),
    modality: list[str] = typer.Option([], "--modality", "-m", help="Candidate modalities (default: text, poster, trailer_ivector, trailer_avf)."),
    set_: list[str] = typer.Option([], "--set", help="Fusion hyperparameter override KEY=VALUE, as for `model train`, except modalities and seed. Repeatable."),
    config: Path = typer.Option(None, help="JSON file of fusion hyperparameters (before --set)."),
    fresh: bool = typer.Option(False, help="Ignore cached (seed, subset) results and recompute them."),
    out: Path = typer.Option(REPO_ROOT / "reports", help="Folder for modality_validation.json and .md."),
) -> None:
    """Choose the default modalities on validation cold movies of the cold-item training part, never on test."""
    from movierec.evaluation.modality_validation import (
        METRICS, ModalityValidationPlan, format_cell, run_modality_validation, write_modality_validation,
    )

    plan = ModalityValidationPlan(seeds=list(seeds), overrides=parse_overrides(set_, config))
    if modality:
        plan.modalities = list(dict.fromkeys(modality))
    result = run_modality_validation(get_settings(), plan, fresh=fresh)
    table = Table(title=f"validation cold movies, seeds {plan.seeds} (mean ± sd)")
    for col in ("modalities", *METRICS):
        table.add_column(col)
    for name, s in result["subsets"].items():
        table.add_row(name, *(format_cell(s["mean"][k], s["sd"][k]) for k in METRICS))
    console.print(table)
    command = rerun_command(sys.argv[1:], ("--out",), ("--fresh", "--no-fresh"))
    json_path, md_path = write_modality_validation(result, out, command)
    d = result["decision"]
    console.print(f"winner {d['winner']} (best mean {d['best']}); default modalities: "
                  f"{'None (every modality in the store)' if d['default_modalities'] is None else d['default_modalities']}")
    console.print(f"wall time {result['wall_seconds'] / 60:.1f} min; wrote {json_path} and {md_path}")


@app.command("validate-new-movies")
@fail_on_data_error
def validate_new_movies(
    seeds: list[int] = typer.Option([0, 1, 2], "--seed", help="Cold-item splits whose TRAINING part is cut into fit and validation data."),
    share: list[float] = typer.Option(list(SHARES), "--share", min=0.0, help="Share of top-20 slots new movies get, relative to their part of the catalog (0: as served). Repeatable."),
    set_: list[str] = typer.Option([], "--set", help="Fusion hyperparameter override KEY=VALUE, as for `model train`, except seed. Repeatable."),
    config: Path = typer.Option(None, help="JSON file of fusion hyperparameters (before --set)."),
    fresh: bool = typer.Option(False, help="Ignore cached per-seed results and recompute them."),
    out: Path = typer.Option(REPO_ROOT / "reports", help="Folder for new_movie_exposure.json and .md."),
) -> None:
    """What placing new movies among the warm ones would gain and cost, on validation data, never on test."""
    overrides = parse_overrides(set_, config)
    if "seed" in overrides:
        raise ModelConfigError("seed is set by the run itself; choose seeds with --seed")
    result = run_new_movie_exposure(get_settings(), list(seeds), sorted(set(share)), overrides, fresh=fresh)
    table = Table(title=f"held-out likes among the whole catalog, seeds {list(seeds)} (mean ± sd)")
    for col in ("ranking", *(f"{name} Recall@20" for name in SETS)):
        table.add_column(col)
    for s, cells in result["summary"].items():
        table.add_row(s, *(f"{cells[name]['recall@20']['mean']:.4f} ± {cells[name]['recall@20']['sd'] or 0:.4f}" for name in SETS))
    console.print(table)
    json_path, md_path = write_new_movie_exposure(result, out, rerun_command(sys.argv[1:], ("--out",), ("--fresh", "--no-fresh")))
    console.print(f"wall time {result['wall_seconds'] / 60:.1f} min; wrote {json_path} and {md_path}")


@app.command()
@fail_on_data_error
def report(
    seeds: list[int] = typer.Option([0, 1, 2], "--seed"),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    config: Path = typer.Option(None, help="JSON file of fusion hyperparameters (default: the FusionConfig defaults, chosen with `model validate`)."),
    ablation_pairs: bool = typer.Option(True, help="Include every pair of modalities in the ablation."),
    peers: bool = typer.Option(True, help="Run the peer libraries."),
    ours: bool = typer.Option(True, help="Run our models (--no-ours: only peers, to fill the cache)."),
    new_users: bool = typer.Option(True, help="Run the new-user evaluation (--no-new-users in all but one of parallel runs)."),
    fresh: bool = typer.Option(False, help="Ignore cached units and recompute everything."),
    budget_minutes: float = typer.Option(None, help="Stop starting new units after this many minutes (the rest are listed as not run)."),
    cached_only: bool = typer.Option(False, help="Only collect units already finished (e.g. by parallel runs with one --seed each)."),
    jobs: int = typer.Option(None, min=1, max=64, help="Worker processes computing the units (default: the usable CPUs, at most 4)."),
    out: Path = typer.Option(REPO_ROOT / "reports", help="Folder for quality.md, quality.json and figures/."),
) -> None:
    """Evaluate ours and every peer on the same saved splits; write the quality report."""
    from movierec.evaluation.quality import QualityPlan, run_quality
    from movierec.evaluation.report import write_report

    settings = get_settings()
    overrides = parse_overrides(set_, config)
    plan = QualityPlan(seeds=list(seeds), overrides=overrides, ablation_pairs=ablation_pairs, peers=peers, ours=ours, new_users=new_users,
                       budget_seconds=budget_minutes * 60 if budget_minutes else None, cached_only=cached_only)
    get_model("fusion").config(overrides)  # fail on a bad key before hours of work
    results = run_quality(settings, plan, fresh=fresh, jobs=jobs or min(4, len(os.sched_getaffinity(0))))
    out.mkdir(parents=True, exist_ok=True)
    # how to regenerate: the same options, minus where to write and whether to only collect the cache
    command = rerun_command(sys.argv[1:], ("--out", "--budget-minutes", "--jobs"), ("--cached-only", "--no-cached-only"))
    doc = write_report(results, out, command)
    for key, g in doc["goals"].items():
        console.print(f"{key}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in g.items()))
    console.print(f"wrote {out / 'quality.md'} and {out / 'quality.json'}")
