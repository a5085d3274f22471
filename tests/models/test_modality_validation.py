"""Choosing default modalities on validation data: the grid, the decision rule, the shared
collaborative stage and the CLI's error for a modality the store lacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from movierec.cli import app
from movierec.evaluation.modality_validation import NDCG, RECALL, choose_default, label, modality_grid
from movierec.evaluation.quality import CollaborativeStages
from movierec.features.store import FeatureStore, ModalityFeatures
from movierec.models.registry import get_model
from movierec.settings import get_settings

FOUR = ["text", "poster", "trailer_ivector", "trailer_avf"]


def test_grid_has_singles_all_and_leave_one_out_once_each():
    grid = [label(s) for s in modality_grid(FOUR)]
    assert grid == ["text", "poster", "trailer_ivector", "trailer_avf", "text+poster+trailer_ivector+trailer_avf",
                    "poster+trailer_ivector+trailer_avf", "text+trailer_ivector+trailer_avf", "text+poster+trailer_avf",
                    "text+poster+trailer_ivector"]
    assert [label(s) for s in modality_grid(["text", "trailer_ivector", "trailer_avf"])] == [
        "text", "trailer_ivector", "trailer_avf", "text+trailer_ivector+trailer_avf", "trailer_ivector+trailer_avf",
        "text+trailer_avf", "text+trailer_ivector"]


def _summary(recall: dict[str, tuple[float, float]]) -> dict:
    return {name: {"modalities": name.split("+"), "mean": {RECALL: m, NDCG: 0.0}, "sd": {RECALL: sd, NDCG: 0.0}}
            for name, (m, sd) in recall.items()}


def _candidates(all_four: float, without_poster: float, sd: float) -> dict:
    rows = {label(s): (0.10, sd) for s in modality_grid(FOUR)}
    rows["text+poster+trailer_ivector+trailer_avf"] = (all_four, sd)
    rows["text+trailer_ivector+trailer_avf"] = (without_poster, sd)
    return _summary(rows)


def test_a_clearly_better_leave_one_out_set_becomes_the_default():
    d = choose_default(_candidates(all_four=0.18, without_poster=0.24, sd=0.02), FOUR)
    assert d["best"] == d["winner"] == "text+trailer_ivector+trailer_avf"
    assert d["default_modalities"] == ["text", "trailer_ivector", "trailer_avf"]
    assert "text" not in d["candidates"]  # single modalities are measured, not candidates


def test_a_tie_within_one_sd_goes_to_the_larger_set():
    d = choose_default(_candidates(all_four=0.20, without_poster=0.24, sd=0.05), FOUR)
    assert d["best"] == "text+trailer_ivector+trailer_avf" and d["winner"] == "text+poster+trailer_ivector+trailer_avf"
    assert d["default_modalities"] is None  # all four: keep "every modality in the store"


def test_every_subset_reuses_one_collaborative_stage(tiny_ratings, tiny_features, tiny_catalog_ids):
    spec = get_model("fusion")
    small = {"epochs": 2, "content_epochs": 2, "dim": 4, "rank_dim": 4, "token_dim": 8, "heads": 2, "batch_size": 64}
    stages = CollaborativeStages()
    first = stages.train(spec, spec.config({**small, "modalities": ["text"]}), "tiny", tiny_ratings, tiny_catalog_ids, tiny_features, False)
    second = stages.train(spec, spec.config({**small, "modalities": ["poster"]}), "tiny", tiny_ratings, tiny_catalog_ids, tiny_features, False)
    for part in ("item_vector", "rank_item_vector", "history_vector"):
        assert torch.equal(getattr(first.net, part).weight, getattr(second.net, part).weight)
    other = stages.train(spec, spec.config({**small, "modalities": ["poster"], "seed": 1}), "tiny", tiny_ratings, tiny_catalog_ids,
                         tiny_features, False)
    assert not torch.equal(first.net.rank_item_vector.weight, other.net.rank_item_vector.weight)


@pytest.fixture
def cli_home(tmp_path, monkeypatch):
    get_settings.cache_clear()
    monkeypatch.setenv("MOVIEREC_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    get_settings.cache_clear()


def _save(store: FeatureStore, name: str, provenance: dict) -> None:
    ids = np.array([1, 2, 3], np.int64)
    store.save(ModalityFeatures(name, ids, np.ones((3, 4), np.float32), np.ones(3, bool), provenance))


def test_cli_names_a_missing_modality_and_the_command_that_builds_it(cli_home):
    _save(FeatureStore(cli_home / "features"), "text", {"encoder": "synthetic", "complete": True})
    result = CliRunner().invoke(app, ["model", "validate-modalities", "--seed", "0", "-m", "text", "-m", "poster", "--out", str(cli_home)])
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert "modality poster is not in the feature store" in out and "`movierec features build -m poster`" in out
    assert "Traceback" not in result.output
    assert not (cli_home / "modality_validation.json").exists()


def test_cli_refuses_a_half_built_modality(cli_home):
    _save(FeatureStore(cli_home / "features"), "text", {"encoder": "synthetic", "complete": False, "pending": 7})
    result = CliRunner().invoke(app, ["model", "validate-modalities", "-m", "text", "--out", str(cli_home)])
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert "modality text is only partly built (7 movies pending" in out and "`movierec features build -m text`" in out


def test_cli_refuses_to_override_what_the_run_sets(cli_home):
    _save(FeatureStore(cli_home / "features"), "text", {"encoder": "synthetic"})
    result = CliRunner().invoke(app, ["model", "validate-modalities", "-m", "text", "--set", "seed=3", "--out", str(cli_home)])
    assert result.exit_code == 2 and "seed is set by the validation run itself" in " ".join(result.output.split())


def test_rerun_command_drops_where_to_write_with_its_value():
    from movierec.cli.model import rerun_command

    argv = ["model", "validate-modalities", "--seed", "0", "--out", "/tmp/x", "--fresh", "-m", "text", "--out=/y"]
    assert rerun_command(argv, ("--out",), ("--fresh",)) == "movierec model validate-modalities --seed 0 -m text"
