"""The data CLI prints coverage and fails on bad input with one clear line, not a traceback."""

from __future__ import annotations

from typer.testing import CliRunner

from movierec.cli import app
from movierec.settings import get_settings

runner = CliRunner()


def _env(tmp_path, **extra):
    get_settings.cache_clear()
    env = {"MOVIEREC_HOME": str(tmp_path / "home")}
    env.update(extra)
    return env


def test_summary_prints_coverage_table(tmp_path, monkeypatch):
    for k, v in _env(tmp_path).items():
        monkeypatch.setenv(k, v)
    result = runner.invoke(app, ["data", "summary"])
    assert result.exit_code == 0, result.output
    assert "100,836 ratings" in result.output
    for modality in ("text", "plot", "poster", "trailer_audio", "trailer_ivector", "trailer_avf"):
        assert modality in result.output
    get_settings.cache_clear()


def test_splits_command_saves_every_kind(tmp_path, monkeypatch):
    for k, v in _env(tmp_path).items():
        monkeypatch.setenv(k, v)
    result = runner.invoke(app, ["data", "splits", "--seed", "0"])
    assert result.exit_code == 0, result.output
    saved = sorted(p.name for p in (tmp_path / "home" / "splits").rglob("*.npz"))
    assert saved == ["cold-item-seed0.npz", "random-seed0.npz", "temporal-seed0.npz"]
    get_settings.cache_clear()


def test_bad_ratings_file_is_one_clear_error(tmp_path, monkeypatch):
    root = tmp_path / "broken"
    root.mkdir()
    (root / "movies.csv").write_text("movieId,title,genres\n1,A (2000),Drama\n")
    (root / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,100\n1,1,four,100\n")
    for k, v in _env(tmp_path, MOVIEREC_DATASET_DIR=str(root)).items():
        monkeypatch.setenv(k, v)
    result = runner.invoke(app, ["data", "summary"])
    assert result.exit_code == 2
    assert "ratings.csv, line 3: rating not a number: 'four'" in result.output.replace("\n", "")
    assert "Traceback" not in result.output
    get_settings.cache_clear()
