"""Logged propensities are valid probabilities; IPS and SNIPS match hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.rl.off_policy import effective_sample_size, ips, snips
from movierec.rl.slate import epsilon_greedy_slate, slate_position_propensities


def test_propensities_are_probabilities_and_match_the_rule():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=12)
    for eps in (0.0, 0.1, 0.5, 1.0):
        for _ in range(50):
            slate, props = epsilon_greedy_slate(scores, 5, eps, rng)
            assert len(set(slate.tolist())) == 5
            assert np.all(props > 0) and np.all(props <= 1)
            np.testing.assert_allclose(props, slate_position_propensities(scores, slate, eps))


def test_first_position_propensity_is_the_empirical_frequency():
    rng = np.random.default_rng(1)
    scores = np.array([0.3, 2.0, -1.0, 0.5])
    eps = 0.4
    firsts = [int(epsilon_greedy_slate(scores, 2, eps, rng)[0][0]) for _ in range(8_000)]
    freq = np.bincount(firsts, minlength=4) / len(firsts)
    expected = np.full(4, eps / 4)
    expected[1] += 1 - eps
    np.testing.assert_allclose(freq, expected, atol=0.02)
    np.testing.assert_allclose([slate_position_propensities(scores, np.array([m]), eps)[0] for m in range(4)], expected)


def test_greedy_slate_is_deterministic_with_propensity_one():
    slate, props = epsilon_greedy_slate(np.array([1.0, 3.0, 2.0]), 3, 0.0, np.random.default_rng(0))
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
