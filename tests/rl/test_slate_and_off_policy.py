"""Logged propensities are valid probabilities; IPS and SNIPS match hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.rl.off_policy import effective_sample_size, ips, snips
from movierec.rl.slate import SlateExploration


def test_propensities_are_probabilities_and_match_the_rule():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=12)
    for eps in (0.0, 0.1, 0.5, 1.0):
        for temperature in (0.0, 0.3, 5.0):
            rule = SlateExploration(eps, temperature)
            for _ in range(50):
                slate, props = rule.select(scores, 5, rng)
                assert len(set(slate.tolist())) == 5
                assert np.all(props > 0) and np.all(props <= 1)
                np.testing.assert_allclose(props, rule.propensities(scores, slate))


def test_first_position_propensity_is_the_empirical_frequency():
    rng = np.random.default_rng(1)
    scores = np.array([0.3, 2.0, -1.0, 0.5])
    eps = 0.4
    firsts = [int(SlateExploration(eps).select(scores, 2, rng)[0][0]) for _ in range(8_000)]
    freq = np.bincount(firsts, minlength=4) / len(firsts)
    expected = np.full(4, eps / 4)
    expected[1] += 1 - eps
    np.testing.assert_allclose(freq, expected, atol=0.02)
    np.testing.assert_allclose([SlateExploration(eps).propensities(scores, np.array([m]))[0] for m in range(4)], expected)


def test_softmax_exploration_by_hand_and_by_frequency():
    # scores (-a, 0, a) with a = sqrt(1.5) have standard deviation 1, so temperature 1 gives a
    # softmax of the scores themselves, mixed with epsilon 0.2 uniform; after the best movie, the
    # two left, (-a, 0), have standard deviation a / 2: a softmax of (-2, 0)
    a = np.sqrt(1.5)
    scores = np.array([-a, 0.0, a])
    rule = SlateExploration(0.2, 1.0)
    soft = np.exp(scores) / np.exp(scores).sum()
    expected = 0.8 * soft + 0.2 / 3
    np.testing.assert_allclose([rule.propensities(scores, np.array([m]))[0] for m in range(3)], expected)
    second = 0.8 * np.exp(-2.0) / (1 + np.exp(-2.0)) + 0.2 / 2
    np.testing.assert_allclose(rule.propensities(scores, np.array([2, 0])), [expected[2], second])
    # the temperature is in standard deviations: scaling every score leaves the rule unchanged
    np.testing.assert_allclose(rule.propensities(100 * scores, np.array([2, 0])), [expected[2], second])
    rng = np.random.default_rng(3)
    firsts = [int(rule.select(scores, 1, rng)[0][0]) for _ in range(8_000)]
    np.testing.assert_allclose(np.bincount(firsts, minlength=3) / len(firsts), expected, atol=0.02)
    # one movie left, or equal scores: uniform
    np.testing.assert_allclose(rule.propensities(np.zeros(4), np.array([1, 3])), [1 / 4, 1 / 3])


def test_a_softmax_covers_what_a_nearby_policy_puts_first_far_better_than_epsilon_greedy():
    # 100 candidates; a nearby policy puts the served policy's second-best first
    scores = -np.arange(100) * 0.05
    greedy, soft = SlateExploration(0.05), SlateExploration(0.05, 0.5)
    assert greedy.propensities(scores, np.array([1]))[0] == pytest.approx(0.0005)
    assert soft.propensities(scores, np.array([1]))[0] > 100 * 0.0005


def test_exploration_rejects_values_outside_its_range():
    with pytest.raises(ValueError, match="epsilon"):
        SlateExploration(1.5)
    with pytest.raises(ValueError, match="temperature"):
        SlateExploration(0.1, -1.0)


def test_greedy_slate_is_deterministic_with_propensity_one():
    slate, props = SlateExploration(0.0).select(np.array([1.0, 3.0, 2.0]), 3, np.random.default_rng(0))
    assert slate.tolist() == [1, 2, 0]
    assert props.tolist() == [1.0, 1.0, 1.0]


def test_ips_and_snips_by_hand():
    rewards = [1.0, 0.0, 2.0, 0.5]
    target = [0.5, 0.2, 0.9, 0.1]
    logging = [0.25, 0.4, 0.3, 0.5]
    # weights 2.0, 0.5, 3.0, 0.2 -> w*r = 2.0, 0.0, 6.0, 0.1
    assert ips(rewards, target, logging) == pytest.approx(8.1 / 4)
    assert snips(rewards, target, logging) == pytest.approx(8.1 / 5.7)
    # (2.0 + 0.5 + 3.0 + 0.2)^2 / (4 + 0.25 + 9 + 0.04)
    assert effective_sample_size(target, logging) == pytest.approx(5.7 ** 2 / 13.29)


def test_on_policy_estimates_are_the_plain_mean():
    r = [0.0, 1.0, 3.0]
    p = [0.3, 0.7, 1.0]
    assert ips(r, p, p) == pytest.approx(4 / 3)
    assert snips(r, p, p) == pytest.approx(4 / 3)
    assert effective_sample_size(p, p) == pytest.approx(3.0)  # every unit counts fully
    assert effective_sample_size([0.9, 0.001, 0.001], [0.001, 0.9, 0.9]) == pytest.approx(1.0, abs=1e-5)  # one unit carries it


def test_invalid_propensities_are_refused():
    with pytest.raises(ValueError, match="logging propensities"):
        ips([1.0], [0.5], [0.0])
    with pytest.raises(ValueError, match="shape"):
        snips([1.0, 2.0], [0.5], [0.5, 0.5])


def test_the_softmax_is_the_plain_formula_bit_for_bit():
    """The fast path must draw exactly what the plain numpy formula gives (committed study records
    were drawn with it), including equal scores (uniform)."""
    from movierec.rl.slate import _softmax_mix

    rng = np.random.default_rng(7)
    for n in (1, 2, 7, 50, 300):
        for scale in (1e-3, 0.03, 1.0, 100.0):
            for eps, t in ((0.05, 1.0), (0.0, 0.5), (0.3, 2.0)):
                s = rng.normal(scale=scale, size=n)
                spread = float(s.std())
                soft = np.exp((s - s[int(np.argmax(s))]) / (t * spread)) if spread > 0 else np.ones(n)
                assert np.array_equal(_softmax_mix(s, t, eps), (1.0 - eps) / soft.sum() * soft + eps / n)
    assert np.array_equal(_softmax_mix(np.full(4, 0.5), 1.0, 0.05), np.full(4, 0.25))
