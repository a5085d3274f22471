"""``movierec bench scale``'s parts: the synthetic dataset loads as ml-25m, and each job's wall time
and peak memory are its own process's. (The timed jobs themselves are the real CLI commands, which
their own tests cover; a full run takes many minutes.)"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from movierec.benchmarks.scale import SyntheticShape, run_job, scale_environment, write_synthetic_movielens
from movierec.data import load_dataset


def test_the_synthetic_set_loads_as_ml_25m_and_depends_on_its_seed(tmp_path):
    shape = SyntheticShape(users=150, movies=120, median_ratings=25, seed=3)
    sizes = write_synthetic_movielens(tmp_path / "a", shape)
    ds = load_dataset(dataset_dir=tmp_path / "a", dataset_format="ml-25m")
    r = ds.ratings
    assert sizes == {"users": r["user_id"].nunique(), "movies": r["movie_id"].nunique(), "ratings": len(r)}
    assert sizes["users"] == 150 and 100 < sizes["movies"] <= 120 and len(ds.catalog) == 120
    assert not r.duplicated(["user_id", "movie_id"]).any()
    assert set(np.unique(r["rating"])) <= {x / 2 for x in range(1, 11)} and r["rating"].nunique() >= 8
    counts = r["movie_id"].value_counts()
    assert counts.iloc[0] > 5 * counts.median()  # a popular head, as in MovieLens
    write_synthetic_movielens(tmp_path / "b", shape)
    write_synthetic_movielens(tmp_path / "c", SyntheticShape(150, 120, 25, seed=4))
    assert (tmp_path / "a" / "ratings.csv").read_bytes() == (tmp_path / "b" / "ratings.csv").read_bytes()
    assert (tmp_path / "a" / "ratings.csv").read_bytes() != (tmp_path / "c" / "ratings.csv").read_bytes()


def test_a_job_is_measured_in_its_own_process(tmp_path):
    env = scale_environment(tmp_path / "data", tmp_path / "home")
    assert env["MOVIEREC_DATASET_FORMAT"] == "ml-25m" and env["MOVIEREC_HOME"] == str(tmp_path / "home")
    assert "MOVIEREC_SHARED_DIR" not in env
    big = run_job("big", [sys.executable, "-c", "b = bytearray(300 << 20); b[::4096] = b'x' * len(b[::4096])"], env, tmp_path / "log")
    small = run_job("small", [sys.executable, "-c", "print('hello')"], env, tmp_path / "log")
    assert big.exit_code == 0 and small.exit_code == 0
    assert big.peak_rss_mib >= 300 and small.peak_rss_mib < 100  # each its own peak, not the largest so far
    failed = run_job("failed", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], env, tmp_path / "log")
    assert failed.exit_code == 3
    assert "hello" in (tmp_path / "log").read_text() and "boom" in (tmp_path / "log").read_text()


def test_the_command_refuses_more_ratings_a_user_than_movies():
    from movierec.cli import app

    result = CliRunner().invoke(app, ["bench", "scale", "--movies", "200", "--median-ratings", "300"])
    assert result.exit_code == 2
    assert "--median-ratings (300) cannot exceed --movies (200)" in result.output


def test_the_command_never_empties_a_folder_it_did_not_make(tmp_path):
    from movierec.cli import app

    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "precious.txt").write_text("do not delete")
    result = CliRunner().invoke(app, ["bench", "scale", "--scratch", str(keep)])
    assert result.exit_code == 2 and "is not empty and not an earlier `movierec bench scale` folder" in result.output
    assert (keep / "precious.txt").read_text() == "do not delete"


@pytest.mark.slow
def test_a_small_run_trains_both_jobs_and_records_them(tmp_path):
    """The whole command at a toy size: the synthetic set, both jobs as processes, the record."""
    import json

    from movierec.cli import app

    result = CliRunner().invoke(app, ["bench", "scale", "--users", "300", "--movies", "200", "--median-ratings", "30",
                                      "--scratch", str(tmp_path / "scratch"), "--reports-dir", str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output + (tmp_path / "scratch" / "jobs.log").read_text()[-3000:]
    record = json.loads((tmp_path / "reports" / "measurements" / "scale.json").read_text())
    assert record["dataset"]["users"] == 300 and record["shape"]["median_ratings"] == 30
    assert [j["job"] for j in record["jobs"]] == ["model train", "rl train"]
    for job in record["jobs"]:
        assert job["exit_code"] == 0 and job["wall_s"] > 0 and 100 < job["peak_rss_mib"] < 8000
        assert job["command"][0] == "movierec"
    home = tmp_path / "scratch" / "home"
    assert (home / "models" / "fusion" / "current" / "artifact.json").exists()  # trained on the synthetic set
    assert any((home / "models" / "policy").glob("dqn-*"))  # saved, not published
    assert not (home / "models" / "policy" / "current").exists()
