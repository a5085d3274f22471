"""``movierec rl``: bad options are one clear line and exit code 2; status reports the pointer."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from movierec.cli.rl import app
from movierec.settings import get_settings


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MOVIEREC_HOME", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.mark.parametrize("args, words", [
    (["evaluate", "--set", "dqn.nope=3"], "unknown config key 'dqn.nope'"),
    (["evaluate", "--set", "dqn.gamma=2"], "dqn.gamma"),
    (["evaluate", "--set", "oops"], "expected DOTTED.KEY=VALUE"),
    (["evaluate", "--seeds", "a,b"], "--seeds"),
    (["train", "--ranker", "/nonexistent/folder"], "--ranker"),
    (["report"], "movierec rl evaluate"),
])
def test_bad_options_are_one_line_and_exit_2(args, words, home):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2, r.output
    assert words in r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert len(r.stderr.strip().splitlines()) == 1


def test_status_without_a_policy(home):
    r = CliRunner().invoke(app, ["status"])
    assert r.exit_code == 0
    assert "greedy" in r.stdout


def test_report_refuses_results_saved_without_a_policy(home):
    bench = get_settings().models_dir / "rl" / "bench"
    bench.mkdir(parents=True)
    (bench / "latest.json").write_text('{"watch_time": {"dqn": 1.0, "greedy": 1.0}}')
    r = CliRunner().invoke(app, ["report"])
    assert r.exit_code == 2, r.output
    assert "no results for dqn_served" in r.stderr and "movierec rl evaluate" in r.stderr
