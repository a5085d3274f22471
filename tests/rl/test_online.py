"""Online retraining on real FeedbackEvent lists: transitions, off-policy check, atomic publish."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.rl.artifact import current_version, publish_policy
from movierec.rl.feedback_log import simulate_feedback_events
from movierec.rl.online import (check_alpha, propensity_gap, retrain_from_events, served_slates, snips_gain_lower_bound,
                                 split_users)
from movierec.rl.ranking import PolicyRanker


@pytest.fixture
def logged(tmp_path, tiny_world, tiny_artifact_factory):
    publish_policy(tiny_artifact_factory("v-base"), tmp_path)
    ranker = PolicyRanker(tiny_artifact_factory("v-base"))
    events = simulate_feedback_events(tiny_world, ranker, np.arange(12), sessions_per_user=1, seed=3)
    return tmp_path, events


def test_events_group_into_served_slates(logged):
    _, events = logged
    slates = served_slates(events)
    impressions = [e for e in events if e.kind == "impression"]
    assert sum(len(g.slate) for g in slates) == len(impressions)
    assert all(len(g.propensities) == len(g.slate) for g in slates)
    watched = [e for e in events if e.kind == "watch"]
    assert sum(g.clicked for g in slates) == len(watched)
    clicked = [g for g in slates if g.clicked]
    assert all(g.watch_seconds is not None and g.rating is not None for g in clicked)


def test_retraining_publishes_a_new_version_when_not_worse(logged):
    policy_dir, events = logged
    result = retrain_from_events(events, policy_dir, min_slates=20, epochs=5, tolerance=1.0, seed=0, min_held_out_users=4)
    assert result.status == "published", result.reason
    assert result.version != "v-base" and current_version(policy_dir) == result.version
    # transitions come from the fitting users only (12 users: 4 held out for the off-policy check)
    assert result.slates >= 20 and 0 < result.transitions
    assert result.current_slates == result.slates  # all served by v-base, the version checked
    assert np.isfinite(result.candidate_snips) and np.isfinite(result.current_snips)
    from movierec.rl.artifact import load_policy

    meta = load_policy(policy_dir / result.version).metadata
    assert meta["parent_version"] == "v-base" and meta["off_policy"]["units"] > 0
    assert meta["off_policy"]["current_propensity_gap"] == result.current_propensity_gap
    assert meta["off_policy"]["valued_on_held_out_users"] == 4


def test_the_off_policy_check_uses_users_the_candidate_never_trained_on():
    users = [[f"u{i}"] for i in range(10)]  # stand-ins for per-user decision lists
    fitting, held_out = split_users(users, 0.3, seed=1)
    assert len(held_out) == 3 and len(fitting) == 7
    assert sorted(map(str, fitting + held_out)) == sorted(map(str, users))
    assert split_users(users, 0.3, seed=1) == (fitting, held_out)  # seeded
    assert len(split_users(users[:2], 0.9, seed=0)[0]) == 1  # always at least one user to fit on


def test_a_worse_candidate_is_not_published(logged):
    policy_dir, events = logged
    # a negative tolerance demands a strict improvement larger than any the check can show
    result = retrain_from_events(events, policy_dir, min_slates=20, epochs=1, tolerance=-100.0, min_held_out_users=4)
    assert result.status == "kept"
    assert current_version(policy_dir) == "v-base"


def test_too_few_events_or_no_policy_skips(logged, tmp_path_factory):
    policy_dir, events = logged
    few = retrain_from_events(events[:8], policy_dir, min_slates=20)
    assert few.status == "skipped" and "fewer than" in few.reason
    # 12 users hold out 4: too few to value a candidate on by default (20)
    few_users = retrain_from_events(events, policy_dir, min_slates=20, tolerance=1.0)
    assert few_users.status == "skipped" and "4 would be held out" in few_users.reason and "fewer than the 20" in few_users.reason
    empty_dir = tmp_path_factory.mktemp("no-policy")
    none = retrain_from_events(events, empty_dir)
    assert none.status == "skipped" and "movierec rl train" in none.reason
    assert current_version(policy_dir) == "v-base"


def test_slates_logged_without_impressions_are_still_valued(logged):
    """A client that logs only watches and ratings (with their position's propensity) is enough."""
    policy_dir, events = logged
    engaged_only = [e for e in events if e.kind != "impression"]
    result = retrain_from_events(engaged_only, policy_dir, min_slates=10, epochs=2, tolerance=1.0, min_held_out_users=4)
    assert result.status == "published", result.reason
    assert np.isfinite(result.candidate_snips)


def test_only_a_gain_the_held_out_slates_support_is_published():
    rng = np.random.default_rng(0)

    def users(target_on_reward: float) -> list[np.ndarray]:
        out = []
        for _ in range(30):  # per user: 10 units of (reward, target propensity, logging propensity)
            reward = (rng.random(10) < 0.3).astype(float)
            out.append(np.column_stack([reward, np.where(reward > 0, target_on_reward, 0.5), np.full(10, 0.5)]))
        return out

    same = users(0.5)
    assert snips_gain_lower_bound(same, same, seed=0) == 0.0  # an identical candidate shows no gain: not published
    better = [u.copy() for u in same]
    for u in better:
        u[u[:, 0] > 0, 1] = 0.9  # puts more mass on the movies users engaged with
    assert snips_gain_lower_bound(better, same, seed=0) > 0.05
    assert snips_gain_lower_bound(same, better, seed=0) < -0.05


def test_each_check_of_one_served_version_spends_a_shrinking_share_of_five_percent():
    assert check_alpha(1) == pytest.approx(0.05 * 6 / np.pi ** 2)  # 3.04%
    assert check_alpha(2) == pytest.approx(check_alpha(1) / 4)
    assert sum(check_alpha(k) for k in range(1, 100_000)) == pytest.approx(0.05, abs=1e-6)  # the whole budget, never more
    with pytest.raises(ValueError, match="start at 1"):
        check_alpha(0)


def test_a_later_check_needs_stronger_evidence_to_publish(logged):
    """The same data and candidate: a modest, noisy gain that the first check publishes is not
    enough at the tenth; the reason names the check and its confidence."""
    rng = np.random.default_rng(0)
    base, candidate = [], []
    for _ in range(40):  # per user: 10 units; the candidate leans a little toward engaged movies
        reward = (rng.random(10) < 0.3).astype(float)
        base.append(np.column_stack([reward, np.full(10, 0.5), np.full(10, 0.5)]))
        target = np.clip(0.5 + 0.3 * rng.standard_normal(10) + 0.1 * reward, 0.05, 0.95)
        candidate.append(np.column_stack([reward, target, np.full(10, 0.5)]))
    first, tenth = (snips_gain_lower_bound(candidate, base, seed=0, alpha=check_alpha(k)) for k in (1, 10))
    assert first > 0.0 > tenth

    policy_dir, events = logged
    later = retrain_from_events(events, policy_dir, min_slates=20, epochs=1, tolerance=-100.0, min_held_out_users=4, check=10)
    assert later.status == "kept" and "99.97% lower bound of the gain (check 10 of v-base)" in later.reason


def test_the_propensity_gap_says_how_far_the_check_is_from_the_logged_decisions(logged):
    same = [np.array([[1.0, 0.5, 0.5], [0.0, 0.2, 0.2]]), np.array([[0.0, 0.9, 0.9]])]
    assert propensity_gap(same) == 0.0  # the check sees the decisions as they were made
    assert propensity_gap([np.array([[1.0, 0.5, 0.1], [0.0, 0.2, 0.4]])]) == pytest.approx(0.3)
    assert propensity_gap([]) is None
    # every check reports it (the simulated log's slates were drawn among the world's candidates,
    # which the check does not see, so here it is about 0.37)
    policy_dir, events = logged
    result = retrain_from_events(events, policy_dir, min_slates=20, epochs=1, tolerance=-100.0, min_held_out_users=4)
    assert result.current_propensity_gap is not None and 0.0 <= result.current_propensity_gap <= 1.0


def test_logged_decisions_are_valued_as_the_policy_made_them(tmp_path, tiny_world, tiny_artifact_factory):
    """With the gateway's decision log every served list is a slate, skipped ones included, and
    the check recomputes the served policy's propensities exactly (gap 0), where slates rebuilt
    from events are far off."""
    publish_policy(tiny_artifact_factory("v-base"), tmp_path)
    decisions: list = []
    events = simulate_feedback_events(tiny_world, PolicyRanker(tiny_artifact_factory("v-base")), np.arange(12), seed=3, decisions=decisions)
    assert decisions and all(e.decision_id in {d.decision_id for d in decisions} for e in events)
    engaged_only = [e for e in events if e.kind != "impression"]  # a client that logs only what users did
    slates = served_slates(engaged_only, decisions)
    assert len(slates) == len(decisions) and all(g.decision is not None for g in slates)
    assert sum(g.clicked for g in slates) == sum(e.kind == "watch" for e in events) < len(decisions)  # skipped lists are there too
    assert all(len(g.propensities) == len(g.slate) for g in slates)

    exact = retrain_from_events(engaged_only, tmp_path, decisions=decisions, min_slates=20, epochs=1, tolerance=-100.0, min_held_out_users=4)
    assert exact.decisions == exact.slates == len(decisions)
    assert exact.current_propensity_gap == pytest.approx(0.0, abs=1e-6)
    assert exact.current_ess == pytest.approx(exact.units) and 0 < exact.candidate_ess < exact.units  # on its own lists, every unit counts
    legacy = [e.model_copy(update={"decision_id": None}) for e in events]  # the same traffic from a client that sends no decision id
    rebuilt = retrain_from_events(legacy, tmp_path, min_slates=20, epochs=1, tolerance=-100.0, min_held_out_users=4)
    assert rebuilt.decisions == 0 and rebuilt.current_propensity_gap > 0.1
    # decisions an earlier version made are valued with their own propensities, but are no mismatch of the served one's
    earlier = [d.model_copy(update={"policy_version": "v-earlier", "propensities": [0.5] * len(d.slate)}) if i % 2 else d
               for i, d in enumerate(decisions)]
    mixed = retrain_from_events(engaged_only, tmp_path, decisions=earlier, min_slates=20, epochs=1, tolerance=-100.0, min_held_out_users=4)
    assert mixed.decisions == len(decisions) and mixed.current_propensity_gap == pytest.approx(0.0, abs=1e-6)
    assert mixed.current_snips != exact.current_snips


def test_events_of_a_logged_decision_join_it_and_others_are_grouped_as_before(tmp_path, tiny_world, tiny_artifact_factory):
    decisions: list = []
    events = simulate_feedback_events(tiny_world, PolicyRanker(tiny_artifact_factory("v-base")), np.arange(3), seed=1, decisions=decisions)
    first, kept = decisions[0], decisions[1:]
    # the first decision is not read yet (too young, or trimmed): the events naming it wait for it
    slates = served_slates(events, kept)
    assert len(slates) == len(kept) and all(g.decision is not None for g in slates)
    # events that name no decision (a client that does not send it) are grouped by slate as before
    legacy = [e.model_copy(update={"decision_id": None}) if e.decision_id == first.decision_id else e for e in events]
    slates = served_slates(legacy, kept)
    orphans = [g for g in slates if g.decision is None]
    assert len(orphans) == 1 and orphans[0].slate == first.slate and len(orphans[0].propensities) == len(first.slate)
    by_decision = {g.decision.decision_id: g for g in slates if g.decision is not None}
    for e in events:
        if e.kind == "watch" and e.decision_id in by_decision:
            g = by_decision[e.decision_id]
            assert g.engaged == e.movie_id and g.watch_seconds == e.watch_seconds
    # another user's decision id credits nothing
    stolen = [e.model_copy(update={"user_id": e.user_id + 1}) for e in events if e.kind == "watch" and e.decision_id in by_decision]
    assert not any(g.clicked for g in served_slates(stolen, kept))
