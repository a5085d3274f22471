"""Turn a quality run into reports/quality.json, reports/quality.md and PNG figures."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from movierec.evaluation.metrics import mean_and_spread  # noqa: E402
from movierec.evaluation.protocol import LIKE_CUT  # noqa: E402
from movierec.features.store import MODALITIES  # noqa: E402

JSON_METRICS = {  # quality.json key -> (section, metric)
    "rmse": ("random", "rmse"), "mae": ("random", "mae"), "recall@20": ("random", "recall@20"),
    "ndcg@20": ("random", "ndcg@20"), "cold_recall@20": ("cold", "cold_recall@20"), "cold_ndcg@20": ("cold", "cold_ndcg@20"),
    "cold_catalog_recall@20": ("cold", "cold_catalog_recall@20"), "cold_catalog_ndcg@20": ("cold", "cold_catalog_ndcg@20"),
    "like_accuracy": ("random", "like_accuracy"), "like_precision": ("random", "like_precision"),
    "like_recall": ("random", "like_recall"), "like_f1": ("random", "like_f1"), "like_auc": ("random", "like_auc"),
}
GOALS_TEXT = "RMSE <= 0.80 and below every peer; Recall@20 and NDCG@20 >= 1.10 x best peer; cold Recall@20 >= 2.5 x content NN; like accuracy >= 80%"


def summarise(results: dict) -> dict:
    """The quality.json document: means per metric and model, spreads (sample std over seeds) beside them."""
    doc: dict = {}
    spread: dict = {}
    for key, (section, metric) in JSON_METRICS.items():
        for model, metrics in results[section].items():
            if metric in metrics:
                m, s = mean_and_spread(metrics[metric])
                doc.setdefault(key, {})[model] = m
                spread.setdefault(key, {})[model] = s
    # always-"like" baseline for the classification view, from the test labels of each seed
    if "always_like" in results:
        for k, v in results["always_like"].items():
            doc.setdefault(f"like_{k}", {})["always_like"] = v
    for label, metrics in results["ablation"].items():
        m, s = mean_and_spread(metrics["cold_recall@20"])
        doc.setdefault("ablation", {})[label] = m
        spread.setdefault("ablation", {})[label] = s
        m, s = mean_and_spread(metrics["cold_ndcg@20"])
        doc.setdefault("ablation_cold_ndcg@20", {})[label] = m
        spread.setdefault("ablation_cold_ndcg@20", {})[label] = s
    doc["spread"] = spread
    doc["new_users"] = results["new_users"]
    doc["attention"] = results["attention"]
    doc["goals"] = goals(doc)
    doc["meta"] = results["meta"]
    doc["skipped"] = results.get("skipped", [])
    return doc


def goals(doc: dict) -> dict:
    def best_peer(key: str) -> tuple[str, float] | tuple[None, float]:
        peers = {k: v for k, v in doc.get(key, {}).items() if k not in ("ours", "mf")}
        if not peers:
            return None, float("nan")
        name = (min if key == "rmse" else max)(peers, key=peers.get)
        return name, peers[name]

    out = {}
    ours = doc.get("rmse", {}).get("ours")
    name, value = best_peer("rmse")
    if ours is not None:
        out["rmse"] = {"ours": ours, "best_peer": name, "best_peer_value": value, "reached": bool(ours <= 0.80 and ours < value)}
    for key in ("recall@20", "ndcg@20"):
        ours = doc.get(key, {}).get("ours")
        name, value = best_peer(key)
        if ours is not None:
            out[key] = {"ours": ours, "best_peer": name, "best_peer_value": value, "ratio": ours / value, "reached": bool(ours >= 1.10 * value)}
    cold = doc.get("cold_recall@20", {})
    if "ours" in cold and "content_nn" in cold:
        out["cold_recall@20"] = {"ours": cold["ours"], "content_nn": cold["content_nn"], "ratio": cold["ours"] / cold["content_nn"],
                                 "reached": bool(cold["ours"] >= 2.5 * cold["content_nn"])}
    acc = doc.get("like_accuracy", {}).get("ours")
    if acc is not None:
        out["like_accuracy"] = {"ours": acc, "reached": bool(acc >= 0.80)}
    return out


def _fmt(results: dict, section: str, model: str, metric: str, digits: int = 4) -> str:
    values = results[section].get(model, {}).get(metric)
    if not values:
        return "–"
    m, s = mean_and_spread(values)
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def figures(results: dict, doc: dict, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    att = results["attention"].get("random") or next(iter(results["attention"].values()), None)
    if att:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        names = list(att)
        ax.bar(names, [att[n] for n in names], color="#4c72b0")
        ax.set_ylabel("mean attention where present")
        ax.set_title("Modality attention of the fusion model (random split, seed 0)")
        ax.tick_params(axis="x", rotation=20)
        fig.tight_layout()
        fig.savefig(folder / "quality_attention.png", dpi=110)
        plt.close(fig)
        written.append("quality_attention.png")
    if results["ablation"]:
        labels = list(results["ablation"])
        stats = [mean_and_spread(results["ablation"][k]["cold_recall@20"]) for k in labels]
        fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(labels)), 3.8))
        ax.bar(labels, [m for m, _ in stats], yerr=[s for _, s in stats], capsize=3, color="#55a868")
        ax.set_ylabel("cold-item Recall@20")
        ax.set_title("Ablation: which modalities rank unseen movies (mean ± std over seeds)")
        ax.tick_params(axis="x", rotation=45)
        for t in ax.get_xticklabels():
            t.set_ha("right")
        fig.tight_layout()
        fig.savefig(folder / "quality_ablation.png", dpi=110)
        plt.close(fig)
        written.append("quality_ablation.png")
    curves = results["curves"]
    if curves:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for key, values in curves.items():
            ax = axes[0] if "rmse" in key else axes[1]
            ax.plot(np.arange(1, len(values) + 1), values, label=key)
        axes[0].set_title("rating RMSE by epoch")
        axes[1].set_title("full-softmax ranking loss by epoch")
        for ax in axes:
            ax.set_xlabel("epoch")
            if ax.get_lines():
                ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / "quality_curves.png", dpi=110)
        plt.close(fig)
        written.append("quality_curves.png")
    return written


def write_report(results: dict, reports_dir: Path, command: str) -> dict:
    reports_dir = Path(reports_dir)
    doc = summarise(results)
    (reports_dir / "quality.json").write_text(json.dumps(doc, indent=1, default=float))
    written = figures(results, doc, reports_dir / "figures")
    meta = results["meta"]
    r = results
    rating_models = [m for m in ["ours", "mf", "global_mean", "surprise_baselineonly", "surprise_svd", "surprise_svdpp", "surprise_knnbaseline"] if m in r["random"]]
    ranking_models = [m for m in ["ours", "mf", "popularity", "implicit_als", "implicit_bpr", "cornac_bpr", "cornac_vbpr", "cornac_ease", "content_nn"] if m in r["random"]]
    md = [
        "# Quality report: fusion recommender vs peers",
        "",
        f"Dataset `{meta['dataset']}` (version `{meta['data_version']}`), seeds {meta['seeds']}; every figure is the mean ± sample "
        f"standard deviation over the seeds, all models trained and scored in the same run on the same saved splits. "
        f"Wall time of the run that wrote this report: {meta['wall_seconds'] / 60:.1f} min with {meta.get('jobs', 1)} worker process(es); "
        f"compute time of all its units (summed over processes, including units finished earlier and reused from the cache): "
        f"{sum(r['seconds'].values()) / 60:.1f} min. `--fresh` recomputes everything.",
        "",
        "Modalities used: " + ", ".join(f"{m} ({v['coverage']:.0%} of movies)" for m, v in meta["modalities"].items())
        + (". Not in the feature store for this run: " + ", ".join(missing) + "." if (missing := [m for m in MODALITIES if m not in meta["modalities"]]) else "."),
        "",
        "Regenerate: `" + command + "`",
        "",
        "## Goals",
        "",
        f"Goals from the issue: {GOALS_TEXT}.",
        "",
        _table(["goal", "ours", "reference", "reached"], _goal_rows(doc["goals"])),
        "",
        "The model (`movierec.models.fusion`): a rating head (biased matrix factorisation, for RMSE and the like view) and a "
        "ranking head (user embedding plus rated-history embeddings, full-softmax loss, for top-K and what the ranker serves), "
        "which learns to put first the movies a user liked (a movie rated below 4 counts for `dislike_weight` in its targets), "
        "trained on the ratings first; then the content encoder (modality tokens, Transformer, attention pooling, missing "
        "modalities masked) learns to place each rated movie where both heads put it. Beside the ranking head the ranker "
        "serves a closed-form item-item term of the rated history (EASE, each movie's ridge penalty growing with its number of "
        "ratings as in EDLAE, regressing on the same like-weighted targets, with a "
        "disliked movie weighted the same way in the user's history, truncated to `item_item_rank` columns, "
        "`movierec.models.item_item`) in the same dot product. A movie is served as its ID vectors "
        "blended with its content vectors by its number of training ratings (a movie no one rated is content only and has no "
        "item-item part); a new user is their history embeddings and the weighted sum of their movies' item-item rows. `mf` is the "
        "same collaborative stage without history, item-item term or content.",
        "",
        "How the configuration was chosen: learning rate, L2, widths, dropouts, the two blend strengths, the item-item "
        "term and `dislike_weight` were compared on a random 90/10 split of the ratings and on 10% validation slices of the training data (seed 0; seeds 0-2 for `dislike_weight`, the ranking blend, the item-item width and the item-item penalties and weight), "
        "never on a test split; see the `FusionConfig` docstring. A goal marked not reached was not reached with any of them.",
        "",
        "## Rating prediction (random 90/10 split)",
        "",
        f"Rating >= 4 counts as a like; accuracy etc. count a predicted rating >= {LIKE_CUT} as a predicted like, for every model alike "
        "(the cut was chosen on a validation slice of the seed-0 training part, see `movierec.evaluation.protocol.LIKE_CUT`). "
        "Always-like is the trivial classifier.",
        "",
        _table(["model", "RMSE", "MAE", "like accuracy", "precision", "recall", "F1", "AUC"],
               [[m] + [_fmt(r, "random", m, k) for k in ("rmse", "mae", "like_accuracy", "like_precision", "like_recall", "like_f1", "like_auc")] for m in rating_models]
               + ([["always_like", "–", "–"] + [f"{doc[f'like_{k}']['always_like']:.4f}" for k in ("accuracy", "precision", "recall", "f1")] + ["0.5"]] if "always_like" in r else [])),
        "",
        "## Top-20 ranking (random split)",
        "",
        "Positives: test ratings >= 4. Every catalog movie the user did not rate in training is ranked (no sampled "
        "negatives). Recall@20 = hits / positives. Equal scores are ordered by one fixed seeded shuffle of the catalog "
        "(`movierec.evaluation.metrics.top_k`), the same for every model and split, so a model that ties is not credited "
        "with the catalog's own order.",
        "",
        _table(["model", "Recall@20", "NDCG@20"], [[m, _fmt(r, "random", m, "recall@20"), _fmt(r, "random", m, "ndcg@20")] for m in ranking_models]),
        "",
        "## Cold items (cold-item split: 10% of movies never seen in training)",
        "",
        "For each user who liked (>= 4) a held-out movie, the held-out movies are ranked (the issue's protocol). "
        "The last two columns rank them as the service meets a new movie: among the whole catalog (every movie the "
        "user did not rate in training), positives being the held-out movies the user liked.",
        "",
        _table(["model", "Recall@20", "NDCG@20", "in the whole catalog: Recall@20", "NDCG@20"],
               [[m, *(_fmt(r, "cold", m, k) for k in ("cold_recall@20", "cold_ndcg@20", "cold_catalog_recall@20", "cold_catalog_ndcg@20"))]
                for m in r["cold"]]),
        "",
        "In the whole catalog a new movie competes with the movies seen in training, and its vectors come from content "
        "alone, so it rarely reaches a top 20 as the model serves it (ours: Recall@20 "
        f"{_fmt(r, 'cold', 'ours', 'cold_catalog_recall@20')}). `reports/new_movie_exposure.md` "
        "(`movierec model validate-new-movies`) measures, on validation data, what giving new movies a share of the "
        "top-20 slots gains for them and costs the other movies.",
        "",
        "## New users (temporal split, seed 0)",
        "",
        _new_users_md(r["new_users"]),
        "",
        "## Ablation: which modality helps (cold-item split)",
        "",
        "Each row is the fusion model with only those modalities (plus user/item IDs), on cold-item seeds " + str(meta["seeds"]) + ". "
        "All rows of a seed share one collaborative stage (see `movierec.models.training`), so they differ only in the content encoder. "
        "`id-only` has no content: every unseen movie scores the same, so it ranks them in catalog order.",
        "",
        _table(["modalities", "cold Recall@20", "cold NDCG@20"],
               [[k, _fmt(r, "ablation", k, "cold_recall@20"), _fmt(r, "ablation", k, "cold_ndcg@20")] for k in r["ablation"]]),
        "",
        "Warm-item effect of content: compare `ours` (the default modalities, " + ", ".join(meta.get("default_modalities", [])) + ") with `mf` (ID-only) in the tables above.",
        "",
        "## Modalities",
        "",
        _table(["modality", "catalog coverage", "dim", "mean attention (random split, seed 0)"],
               [[m, f"{v['coverage']:.1%}", str(v["dim"]), f"{r['attention'].get('random', {}).get(m, float('nan')):.3f}"] for m, v in meta["modalities"].items()]),
        "",
        "## Figures",
        "",
    ]
    md += [f"![{w}](figures/{w})" for w in written]
    if r.get("skipped"):
        md += ["", "## Not run", "", "These units were skipped because the run's time budget (`--budget-minutes`) ran out; "
               "rerun the same command to compute them (finished units are reused):", ""]
        md += [f"- {s}" for s in r["skipped"]]
    md += ["", "## Configuration", "", "```json", json.dumps(meta["config"], indent=1), "```", "",
           "## Time per unit (seconds, summed over seeds)", "",
           _table(["unit", "seconds"], [[k, f"{v:.0f}"] for k, v in sorted(r["seconds"].items())]), ""]
    (reports_dir / "quality.md").write_text("\n".join(md))
    return doc


def _goal_rows(g: dict) -> list[list[str]]:
    rows = []
    if "rmse" in g:
        rows.append(["RMSE <= 0.80 and below every peer", f"{g['rmse']['ours']:.4f}", f"best peer {g['rmse']['best_peer']} {g['rmse']['best_peer_value']:.4f}", _yes(g["rmse"]["reached"])])
    for key in ("recall@20", "ndcg@20"):
        if key in g:
            rows.append([f"{key} >= 1.10 x best peer", f"{g[key]['ours']:.4f}", f"best peer {g[key]['best_peer']} {g[key]['best_peer_value']:.4f} (ratio {g[key]['ratio']:.3f})", _yes(g[key]["reached"])])
    if "cold_recall@20" in g:
        c = g["cold_recall@20"]
        rows.append(["cold Recall@20 >= 2.5 x content NN", f"{c['ours']:.4f}", f"content NN {c['content_nn']:.4f} (ratio {c['ratio']:.2f})", _yes(c["reached"])])
    if "like_accuracy" in g:
        rows.append(["like accuracy >= 80%", f"{g['like_accuracy']['ours']:.4f}", "", _yes(g["like_accuracy"]["reached"])])
    return rows


def _yes(flag: bool) -> str:
    return "yes" if flag else "**not reached**"


def _new_users_md(nu: dict) -> str:
    if not nu:
        return "not run"
    head = (f"{nu['users']} users with the fewest ratings are removed from training; each is folded in from their earlier "
            f"ratings (median {nu['median_early_ratings']:.0f}) without retraining and judged on their later ratings.")
    rows = []
    for name in ("ours_foldin", "implicit_als_foldin", "popularity"):
        m = nu.get(name, {})
        rows.append([name, f"{m.get('recall@20', float('nan')):.4f}", f"{m.get('ndcg@20', float('nan')):.4f}",
                     f"{m['rmse']:.4f}" if "rmse" in m else "–", str(m.get("users", ""))])
    return head + "\n\n" + _table(["model", "Recall@20", "NDCG@20", "RMSE", "users"], rows)
