"""The quality run: ours, the in-house baselines and every peer on the same saved splits.

Each unit of work (one model on one split and seed) is cached as JSON under
``Settings.home / "quality"`` keyed by the data version and configuration, so an interrupted
run resumes where it stopped; ``fresh=True`` ignores the cache.

Units fall into groups (``movierec.evaluation.quality_jobs``): the units of one group share
trained stages and run in order in one process, and with ``jobs`` above 1 the groups are computed
by that many worker processes into the cache, which the run then reads. A unit's result does not
depend on which process computed it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from tqdm import tqdm

from movierec.data import Dataset, load_dataset
from movierec.data.splits import get_split
from movierec.evaluation import peers
from movierec.evaluation.metrics import TIE_ORDER_SEED
from movierec.evaluation.new_users import new_user_metrics
from movierec.evaluation.quality_jobs import compute_groups_in_parallel
from movierec.evaluation.protocol import COLD_SPLIT_METRICS, LIKE_CUT, ArtifactScorer, cold_split_metrics, rating_metrics, topk_metrics
from movierec.features.store import FeatureStore, ModalityFeatures
from movierec.models.item_content import available_features
from movierec.models.config import FusionConfig
from movierec.models.registry import ModelSpec, get_model, resolve_modalities, train_model
from movierec.models.training import TrainedFusion, collaborative_key
from movierec.settings import Settings

MIN_ABLATION_COVERAGE = 0.05
"""Modalities present for fewer catalog movies than this are left out of the ablation grid."""


@dataclass
class QualityPlan:
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    overrides: dict = field(default_factory=dict)
    """Fusion hyperparameters (chosen on a validation slice of seed-0 training data)."""
    ablation_pairs: bool = True
    peers: bool = True
    ours: bool = True
    """False runs only the peers (fills the cache while features are still being built)."""
    new_users: bool = True
    """False leaves out the new-user run (e.g. in all but one of several parallel runs, one per seed)."""
    validation_share: float = 0.1
    budget_seconds: float | None = None
    """Stop starting new units after this long; skipped units are listed in the report."""
    cached_only: bool = False
    """Only collect finished units (e.g. computed by parallel runs, one per seed); list the rest."""
    groups: frozenset[str] | None = None
    """Run only the units of these groups (a worker's share of a parallel run); None: all."""
    deadline: float | None = None
    """Wall-clock time (``time.time()``) after which no new unit starts; set from ``budget_seconds``."""


def unit_key(*parts) -> str:
    """A short hash of everything a cached unit's result depends on, with how ``top_k`` orders
    equal scores (a result ranked under another rule is computed again)."""
    keyed = [*parts, {"top_k_tie_order_seed": TIE_ORDER_SEED}]
    return hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()[:16]


class CollaborativeStages:
    """Trained models by (training data, collaborative settings): a model whose settings agree with
    an earlier one's on ``collaborative_key`` and that trains on the same ratings reuses its
    collaborative stage, so e.g. an ablation's rows differ only in what content adds."""

    def __init__(self) -> None:
        self._trained: dict[tuple[str, str], TrainedFusion] = {}

    def train(self, spec: ModelSpec, cfg: FusionConfig, data_name: str, train: pd.DataFrame, catalog: np.ndarray,
              features: dict[str, ModalityFeatures], progress: bool = True) -> TrainedFusion:
        """``train_model``, reusing the stage of an earlier model on ``data_name`` (a name for ``train``)."""
        shared = (data_name, json.dumps(collaborative_key(cfg), sort_keys=True))
        trained = train_model(spec, cfg, train, catalog, features, progress=progress, collaborative=self._trained.get(shared))
        self._trained[shared] = trained
        return trained


class NotCached(Exception):
    """A unit has no cached result and the run may not compute new ones."""


class UnitCache:
    def __init__(self, folder: Path, fresh: bool, cached_only: bool = False):
        self.folder, self.fresh, self.cached_only = folder, fresh, cached_only
        folder.mkdir(parents=True, exist_ok=True)

    def run(self, name: str, key: str, compute: Callable[[], dict]) -> dict:
        path = self.folder / f"{name}.json"
        if not self.fresh and path.exists():
            saved = json.loads(path.read_text())
            if saved.get("key") == key:
                return saved["result"]
        if self.cached_only:
            raise NotCached(name)
        started = time.perf_counter()
        result = compute()
        result["seconds"] = time.perf_counter() - started
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "result": result}, default=float))
        tmp.replace(path)
        return result


def _attention_summary(artifact) -> dict[str, float]:
    """Mean attention each modality gets over the movies where it is present."""
    att = artifact.modality_attention
    if att is None:
        return {}
    return {n: float(att[att[:, k] > 0, k].mean()) if (att[:, k] > 0).any() else 0.0 for k, n in enumerate(artifact.modality_names)}


def ablation_grid(features: dict[str, ModalityFeatures], catalog_ids: np.ndarray, pairs: bool) -> list[list[str]]:
    usable = [m for m, f in features.items() if f.aligned(catalog_ids)[1].mean() >= MIN_ABLATION_COVERAGE]
    grid = [[]] + [[m] for m in usable]
    if len(usable) > 1:
        grid.append(usable)
    if pairs:
        grid += [list(p) for p in itertools.combinations(usable, 2) if len(usable) > 2]
    return grid


def run_quality(settings: Settings, plan: QualityPlan, fresh: bool = False, progress: bool = True, jobs: int = 1) -> dict:
    """Run (or collect from the cache) every unit of ``plan``; with ``jobs`` above 1, worker
    processes compute the groups first."""
    started = time.perf_counter()
    if plan.deadline is None and plan.budget_seconds is not None:
        plan = dataclasses.replace(plan, deadline=time.time() + plan.budget_seconds)
    ds = load_dataset(settings)
    features = available_features(FeatureStore(settings.features_dir), ds)
    catalog = ds.catalog.index.to_numpy(np.int64)
    cache = UnitCache(settings.home / "quality" / ds.name, fresh, plan.cached_only)
    fusion = get_model("fusion")
    cfg = fusion.config(plan.overrides)
    if plan.overrides.get("modalities") is not None:
        # the whole run (ablation grid, peers that read features) sees only the modalities asked
        # for, so a modality that lands in the store mid-run cannot make seeds disagree; FusionConfig's
        # default set only picks what `ours` fuses, and the ablation still covers the whole store
        features = {m: f for m, f in features.items() if m in cfg.modalities}
    base_key = [ds.version, {m: f.provenance for m, f in features.items()}, cfg.model_dump(), LIKE_CUT]
    text = features.get("text")
    poster = features.get("poster")

    units: list[tuple[str, str, Callable[[], None]]] = []
    """(label, group, run) in the order a single process runs them."""
    collaborative = CollaborativeStages()
    results: dict = {"random": {}, "cold": {}, "new_users": {}, "ablation": {}, "curves": {}, "attention": {}, "seconds": {}}

    def record(section: str, model: str, metrics: dict) -> None:
        slot = results[section].setdefault(model, {})
        for k, v in metrics.items():
            if k != "seconds":
                slot.setdefault(k, []).append(v)
        results["seconds"].setdefault(f"{section}/{model}", 0.0)
        results["seconds"][f"{section}/{model}"] += metrics.get("seconds", 0.0)

    def ours(name: str, split_kind: str, seed: int, overrides: dict) -> Callable[[], None]:
        def go() -> None:
            split = get_split(ds, split_kind, seed, settings.splits_dir)
            train, test = split.train(ds), split.test(ds)
            spec = get_model("mf" if overrides.get("modalities") == [] else "fusion")
            c = spec.config({**plan.overrides, **overrides, "seed": seed})

            def compute() -> dict:
                trained = collaborative.train(spec, c, f"{split_kind}-{seed}", train, catalog, features, progress)
                scorer = ArtifactScorer(trained.export("eval", {}))
                out = {"train_seconds": trained.train_seconds}
                if split_kind == "cold-item":
                    out.update(cold_split_metrics(scorer, train, test, split.cold_movie_ids, catalog))
                else:
                    out.update(rating_metrics(scorer, test))
                    out.update(topk_metrics(scorer, train, test, catalog))
                if seed == plan.seeds[0] and name == "ours":
                    out["attention"] = _attention_summary(scorer.a)
                    out["curve_train_rmse"] = trained.curves["train_rmse"]
                    out["curve_rank_loss"] = trained.curves["rank_loss"]
                return out

            measured = COLD_SPLIT_METRICS if split_kind == "cold-item" else ()
            m = cache.run(f"{name}-{split_kind}-{seed}", unit_key(base_key, name, split_kind, seed, c.model_dump(), *measured), compute)
            if "attention" in m:
                results["attention"][split_kind] = m.pop("attention")
                results["curves"][f"{split_kind}_train_rmse"] = m.pop("curve_train_rmse")
                results["curves"][f"{split_kind}_rank_loss"] = m.pop("curve_rank_loss")
            section = "ablation" if name.startswith("ablation:") else ("cold" if split_kind == "cold-item" else "random")
            record(section, name.removeprefix("ablation:"), m)
        return go

    def peer(name: str, seed: int) -> Callable[[], None]:
        def go() -> None:
            split = get_split(ds, "random", seed, settings.splits_dir)
            train, test = split.train(ds), split.test(ds)

            def compute() -> dict:
                fitted = peers.fit_peer(name, train, seed, features)
                return rating_metrics(fitted, test) if name in peers.RATING_PEERS else topk_metrics(fitted, train, test, catalog)

            judged_by = LIKE_CUT if name in peers.RATING_PEERS else None
            record("random", name, cache.run(f"{name}-random-{seed}", unit_key(ds.version, name, seed, _peer_inputs(name), judged_by), compute))
        return go

    def _peer_inputs(name: str):
        """What a peer's result depends on besides data and seed: its settings and its features."""
        features = poster.provenance if name == "cornac_vbpr" else text.provenance if name == "content_nn" else None
        return peers.PEER_SETTINGS.get(name), features

    def cold_peer(name: str, seed: int) -> Callable[[], None]:
        def go() -> None:
            split = get_split(ds, "cold-item", seed, settings.splits_dir)
            train, test = split.train(ds), split.test(ds)

            def compute() -> dict:
                scorer = peers.RandomRanker(seed) if name == "random" else peers.ContentNearestNeighbour(train, text.movie_ids, text.matrix, text.mask)
                return cold_split_metrics(scorer, train, test, split.cold_movie_ids, catalog)

            record("cold", name, cache.run(f"{name}-cold-{seed}", unit_key(ds.version, name, seed, _peer_inputs(name), COLD_SPLIT_METRICS), compute))
        return go

    def new_users() -> None:
        def compute() -> dict:
            return new_user_metrics(ds, settings, cfg, catalog, features, progress=progress)

        out = cache.run("new-users-temporal-0", unit_key(base_key, "new-users"), compute)
        out.pop("seconds", None)
        results["new_users"] = out

    grid = ablation_grid(features, catalog, plan.ablation_pairs)
    # seed by seed, so that a run cut short by its budget still has every comparison once
    for seed in plan.seeds:
        if plan.ours:
            units.append((f"ours random seed {seed}", f"random-{seed}", ours("ours", "random", seed, {})))
            units.append((f"mf random seed {seed}", f"random-{seed}", ours("mf", "random", seed, {"modalities": []})))
            units.append((f"ours cold seed {seed}", f"cold-{seed}", ours("ours", "cold-item", seed, {})))
        if text is not None:
            units.append((f"content_nn cold seed {seed}", f"content_nn-cold-{seed}", cold_peer("content_nn", seed)))
        units.append((f"random cold seed {seed}", f"random_order-cold-{seed}", cold_peer("random", seed)))
        if plan.peers:
            for name in peers.RATING_PEERS + peers.RANKING_PEERS:
                if (name == "cornac_vbpr" and poster is None) or (name == "content_nn" and text is None):
                    continue
                units.append((f"{name} seed {seed}", f"{name}-{seed}", peer(name, seed)))
        if not plan.ours:
            continue
        if seed == plan.seeds[0] and plan.new_users:
            units.append(("new users (temporal)", "new-users", new_users))
        for combo in grid:
            label = "+".join(combo) or "id-only"
            units.append((f"ablation {label} seed {seed}", f"cold-{seed}", ours(f"ablation:{label}", "cold-item", seed, {"modalities": combo})))

    always = []
    for seed in plan.seeds:
        test = get_split(ds, "random", seed, settings.splits_dir).test(ds)
        share = float((test["rating"] >= 4.0).mean())
        always.append({"accuracy": share, "precision": share, "recall": 1.0, "f1": 2 * share / (1 + share)})
    results["always_like"] = {k: float(np.mean([a[k] for a in always])) for k in always[0]}

    if plan.groups is not None:
        units = [u for u in units if u[1] in plan.groups]
    elif jobs > 1 and not plan.cached_only:
        compute_groups_in_parallel(settings, plan, fresh, [(label, group) for label, group, _ in units], jobs, progress)
        cache.fresh, cache.cached_only = False, True  # the workers filled the cache: collect it

    results["skipped"] = []
    bar = tqdm(units, desc="quality" if not cache.cached_only else "collecting", unit="run", disable=not progress)
    for label, _, go in bar:
        if plan.deadline is not None and not cache.cached_only and time.time() > plan.deadline:
            results["skipped"].append(label)
            continue
        bar.set_postfix_str(label)
        try:
            go()
        except NotCached:
            results["skipped"].append(label)
    results["meta"] = {
        "dataset": ds.name, "data_version": ds.version, "seeds": plan.seeds, "config": cfg.model_dump(),
        "modalities": {m: {"coverage": float(f.aligned(catalog)[1].mean()), "dim": f.dim} for m, f in features.items()},
        "default_modalities": resolve_modalities(cfg, features),
        "ablation_grid": ["+".join(c) or "id-only" for c in grid],
        "wall_seconds": time.perf_counter() - started,
        "jobs": jobs,
    }
    return results
