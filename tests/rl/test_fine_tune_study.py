"""The fine-tuning study on the tiny world: every candidate is valued off-policy by the check and
served on-policy on the same simulator seeds as the served policy."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.rl.fine_tune_study import run_study, served_value


def test_each_candidate_is_valued_off_policy_and_served_on_the_same_sessions(tiny_world, tiny_artifact_factory, tmp_path):
    from movierec.rl.artifact import publish_policy
    from movierec.rl.feedback_log import simulate_feedback_events
    from movierec.rl.online import retrain_from_events
    from movierec.rl.ranking import PolicyRanker

    served = tiny_artifact_factory("v-base")
    eval_users = np.arange(24, 40)
    rows = run_study(tiny_world, served, [1, 5], log_users=np.arange(24), eval_users=eval_users, seed=0, caps=(10.0,),
                     min_held_out_users=4, say=lambda _: None)
    assert [r.label for r in rows] == ["1 epochs", "5 epochs", "untrained"]
    for r in rows:
        check, capped = r.views
        assert check.cap is None and 0 < check.candidate_ess <= r.units and r.would_publish == (check.gain_lower_bound > 0)
        assert capped.cap == 10.0 and capped.candidate_ess >= check.candidate_ess
        assert r.served == rows[0].served and r.candidate.lists > 0 and 0 <= r.candidate.ctr <= 1
        assert r.ctr_gain == pytest.approx(r.candidate.ctr - r.served.ctr)
    # uncapped, the study sees what the check saw: the same log, candidate and held-out users
    decisions: list = []
    events = simulate_feedback_events(tiny_world, PolicyRanker(served), np.arange(24), seed=0, decisions=decisions, id_prefix="log")
    publish_policy(served, tmp_path)
    result = retrain_from_events(events, tmp_path, decisions=decisions, epochs=5, tolerance=1e9, min_held_out_users=4)
    check = rows[1].views[0]
    assert check.gain == pytest.approx(result.candidate_snips - result.current_snips) and rows[1].units == result.units
    assert check.candidate_ess == pytest.approx(result.candidate_ess) and check.gain_lower_bound == pytest.approx(result.gain_lower_bound)
    # the served policy's on-policy value is reproducible: every candidate met the same sessions
    again, per_user = served_value(tiny_world, served, eval_users, 1)
    assert again == rows[0].served and len(per_user) == len(eval_users)


@pytest.mark.parametrize("args, named", [(["--epochs", "0,3"], "--epochs"), (["--epochs", "a"], "--epochs"),
                                         (["--version", "v-nine"], "--version"), (["--caps", "0"], "--caps")])
def test_bad_study_options_are_a_clear_cli_error(args, named, tmp_path, tiny_artifact_factory, monkeypatch):
    from typer.testing import CliRunner

    from movierec.cli import app
    from movierec.rl.artifact import publish_policy
    from movierec.settings import get_settings

    monkeypatch.setenv("MOVIEREC_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        publish_policy(tiny_artifact_factory("v-one"), get_settings().models_dir / "policy")
        result = CliRunner().invoke(app, ["rl", "fine-tune-study", *args])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and named in result.output and "Traceback" not in result.output, result.output


def test_clipped_units_cap_the_weights_and_keep_the_rest():
    from movierec.rl.off_policy import clipped_units, importance_weights

    units = np.array([[1.0, 0.9, 0.9], [0.0, 0.5, 0.001], [2.0, 0.002, 0.5]])
    capped = clipped_units(units, 10.0)
    assert importance_weights(capped[:, 1], capped[:, 2]).tolist() == pytest.approx([1.0, 10.0, 0.004])
    assert capped[:, [0, 2]].tolist() == units[:, [0, 2]].tolist() and units[1, 1] == 0.5  # the input is not changed
    with pytest.raises(ValueError, match="positive"):
        clipped_units(units, 0)


def test_softmax_serving_lets_the_check_value_fine_tuned_candidates_on_more_units(tiny_world, tiny_artifact_factory):
    """Under epsilon-greedy serving, the candidate's first picks were logged mostly by uniform
    exploration; under a softmax, by the served policy's own near-best draws: a larger ESS."""
    import dataclasses

    from movierec.rl.config import apply_overrides

    base = tiny_artifact_factory("v-base")
    greedy, soft = (dataclasses.replace(base, config=apply_overrides(base.config, {"dqn.serving_temperature": t})) for t in (0.0, 1.0))
    ess = {}
    for name, served in (("greedy", greedy), ("soft", soft)):
        rows = run_study(tiny_world, served, [5], log_users=np.arange(24), eval_users=np.arange(24, 40), seed=0,
                         negative_control=False, min_held_out_users=4, say=lambda _: None)
        ess[name] = rows[0].views[0].candidate_ess / rows[0].units
    assert ess["soft"] > 2 * ess["greedy"], ess
