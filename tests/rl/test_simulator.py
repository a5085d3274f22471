"""The simulator: its users prefer what their real ratings say, interest evolves, sessions end."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from movierec.data import load_dataset
from movierec.rl.config import RewardConfig, SimulatorConfig
from movierec.rl.factorization import fit_biased_mf, predict_rating_matrix
from movierec.rl.items import build_item_table
from movierec.rl.reward import step_reward
from movierec.rl.simulator import UserSimulator


@pytest.mark.slow
def test_simulated_users_prefer_what_their_ratings_say(bare_settings):
    ds = load_dataset(bare_settings)
    counts = ds.ratings["user_id"].value_counts()
    users = np.sort(counts.index[(counts >= 100) & (counts <= 400)][:30].to_numpy())
    ratings = ds.ratings[ds.ratings["user_id"].isin(users)]
    oracle = fit_biased_mf(ratings, dim=16, epochs=150, seed=0)
    items = build_item_table(ds, oracle, ratings, min_ratings=1)
    taste = predict_rating_matrix(oracle, users, items.movie_ids)
    sim = UserSimulator(SimulatorConfig(), items, users, taste)
    rng = np.random.default_rng(0)
    chose_high = chose_low = 0
    watch_high, watch_low, correlations = [], [], []
    for ui, user in enumerate(users):
        mine = ratings[ratings["user_id"] == user]
        high = items.index_of(mine.loc[mine["rating"] >= 4.5, "movie_id"].to_numpy())
        low = items.index_of(mine.loc[mine["rating"] <= 2.0, "movie_id"].to_numpy())
        high, low = high[high >= 0], low[low >= 0]
        if len(high) == 0 or len(low) == 0:
            continue
        for t in range(20):
            h, lo = int(rng.choice(high)), int(rng.choice(low))
            slate = [h, lo] if t % 2 else [lo, h]  # both orders, so position does not decide
            out = sim.new_session(ui, rng).step(slate)
            if out.clicked:
                chose_high += out.movie_row == h
                chose_low += out.movie_row == lo
            watch_high.append(sim.new_session(ui, rng).step([h]).watch_minutes)
            watch_low.append(sim.new_session(ui, rng).step([lo]).watch_minutes)
        rows = items.index_of(mine["movie_id"].to_numpy())
        given = [sim.new_session(ui, rng).step([r]) for r in rows[:60]]
        simulated = [g.rating if g.clicked else np.nan for g in given]
        ok = ~np.isnan(simulated)
        if ok.sum() > 10:
            correlations.append(stats.spearmanr(np.asarray(simulated)[ok], mine["rating"].to_numpy()[:60][ok]).statistic)
    assert chose_high + chose_low > 200
    assert chose_high / (chose_high + chose_low) > 0.8
    assert np.mean(watch_high) > 1.5 * np.mean(watch_low)
    assert np.median(correlations) > 0.5


def test_same_seed_same_session(tiny_world):
    a = tiny_world.simulator.new_session(3, np.random.default_rng(5))
    b = tiny_world.simulator.new_session(3, np.random.default_rng(5))
    slate = np.arange(5)
    outcomes_a = [a.step(slate + i) for i in range(8)]
    outcomes_b = [b.step(slate + i) for i in range(8)]
    assert [(o.choice, o.watch_minutes, o.rating) for o in outcomes_a] == [(o.choice, o.watch_minutes, o.rating) for o in outcomes_b]


def test_repeating_a_genre_bores_and_variety_recovers(world_factory):
    tiny_world = world_factory(no_click_utility=0.5, choice_temperature=0.05, session_budget_minutes=5000)
    session = tiny_world.simulator.new_session(0, np.random.default_rng(1))
    g = tiny_world.items.genres
    same = np.flatnonzero(g[:, 0] > 0)
    same = same[np.argsort(-tiny_world.simulator.taste[0, same])]  # liked movies, so the user watches them
    other = np.flatnonzero(g[:, 1] > 0)
    before_same, before_other = session.enjoyment(same).mean(), session.enjoyment(other).mean()
    for row in same[:4]:
        assert session.step([row]).clicked  # choosing nothing is (almost) never better here
    after_same, after_other = session.enjoyment(same).mean(), session.enjoyment(other).mean()
    assert after_same < before_same - 0.5  # bored with genre 0
    assert after_other == pytest.approx(before_other)  # other genres unaffected
    for _ in range(10):  # boredom fades while the user browses
        session.boredom *= 1 - tiny_world.simulator.config.boredom_decay
    assert session.enjoyment(same).mean() > after_same


def test_sessions_end_when_the_budget_is_spent(world_factory):
    world = world_factory(session_budget_minutes=200, budget_spread=0.0)
    session = world.simulator.new_session(0, np.random.default_rng(0))
    steps = 0
    while not session.done:
        session.step(np.arange(5) + steps)
        steps += 1
    assert session.budget <= 0 or session.steps == world.simulator.config.max_steps
    assert session.watch_minutes > 0
    with pytest.raises(RuntimeError):
        session.step(np.arange(5))


def test_good_movies_extend_the_session(world_factory):
    """A user shown their favourites watches longer than one shown their least liked movies."""
    world = world_factory()
    taste = world.simulator.taste[0]
    best, worst = np.argsort(-taste), np.argsort(taste)
    totals = {}
    for name, order in (("best", best), ("worst", worst)):
        minutes = []
        for s in range(10):
            session = world.simulator.new_session(0, np.random.default_rng(s))
            i = 0
            while not session.done:
                session.step(order[i: i + 5])
                i += 5
            minutes.append(session.watch_minutes)
        totals[name] = np.mean(minutes)
    assert totals["best"] > 2 * totals["worst"]


def test_reward_follows_the_design():
    cfg = RewardConfig()
    assert step_reward(cfg, False, None, None) == cfg.skip_reward
    assert step_reward(cfg, True, 90.0, 4.0) == pytest.approx(1.5 + 0.5)
    assert step_reward(cfg, True, 5.0, 2.0) == pytest.approx(-0.5 - 0.5)
    assert step_reward(cfg, True, 20.0, None) == 0.0
    assert step_reward(RewardConfig(rating_weight=2.0, watch_weight=0.0), True, 120.0, 5.0) == pytest.approx(4.0)


def test_the_factorisation_summed_over_chunks_of_ratings_is_the_full_batch_fit():
    """Chunks bound memory at ml-25m's size; the gradient, and so the fit, is the full batch's."""
    import pandas as pd
    import torch

    rng = np.random.default_rng(0)
    ratings = pd.DataFrame({"user_id": rng.integers(0, 40, 600), "movie_id": rng.integers(0, 60, 600),
                            "rating": rng.integers(1, 11, 600) / 2.0}).drop_duplicates(["user_id", "movie_id"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # scatter-adds over several threads sum in an order of their own
    try:
        whole = fit_biased_mf(ratings, dim=8, epochs=40, seed=0)
        chunked = fit_biased_mf(ratings, dim=8, epochs=40, seed=0, chunk_ratings=97)
    finally:
        torch.set_num_threads(threads)
    assert len(ratings) > 5 * 97
    for a, b in ((whole.user_vectors, chunked.user_vectors), (whole.item_vectors, chunked.item_vectors),
                 (whole.user_bias, chunked.user_bias), (whole.item_bias, chunked.item_bias)):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert not np.allclose(whole.item_vectors, fit_biased_mf(ratings, dim=8, epochs=41, seed=0).item_vectors, atol=1e-4)


def test_predicted_rating_matrix_is_the_model_at_every_pair_and_large_audiences_are_sampled():
    from movierec.models.serving import ServingArtifact
    from movierec.rl.world import simulated_users

    rng = np.random.default_rng(1)
    art = ServingArtifact(version="t", movie_ids=np.array([3, 7, 9]), item_vectors=rng.normal(size=(3, 2)).astype(np.float32),
                          item_bias=np.array([0.1, -0.2, 0.3], np.float32), user_ids=np.array([1, 4]),
                          user_vectors=rng.normal(size=(2, 2)).astype(np.float32), user_bias=np.array([0.5, -0.5], np.float32),
                          global_mean=3.5)
    got = predict_rating_matrix(art, np.array([4, 1]), np.array([9, 3]))
    for a, user_row in enumerate([1, 0]):
        for b, movie_row in enumerate([2, 0]):
            want = 3.5 + art.user_bias[user_row] + art.item_bias[movie_row] + art.user_vectors[user_row] @ art.item_vectors[movie_row]
            assert got[a, b] == pytest.approx(want, abs=1e-6)
    users = np.arange(100, 130)
    assert simulated_users(users, seed=0, max_users=30) is users
    sample = simulated_users(users, seed=0, max_users=10)
    assert len(sample) == 10 and set(sample) <= set(users) and np.all(np.diff(sample) > 0)
    assert np.array_equal(sample, simulated_users(users, seed=0, max_users=10))
    assert not np.array_equal(sample, simulated_users(users, seed=1, max_users=10))


def test_the_oracle_is_fitted_on_the_simulated_users_ratings_only(bare_settings):
    from movierec.rl.config import ExperimentConfig
    from movierec.rl.world import fit_oracle, simulated_users

    ds = load_dataset(bare_settings)
    config = ExperimentConfig()
    everyone = np.unique(ds.ratings["user_id"].to_numpy())
    oracle = fit_oracle(bare_settings, ds, config, max_users=12)
    sample = simulated_users(everyone, config.split_seed, 12)
    assert len(sample) == 12
    assert np.array_equal(oracle.user_ids, sample)
    assert np.array_equal(oracle.movie_ids, np.unique(ds.ratings.loc[ds.ratings["user_id"].isin(sample), "movie_id"]))
    assert len(oracle.movie_ids) < ds.ratings["movie_id"].nunique()
    # a second call reads the cache instead of fitting again
    assert fit_oracle(bare_settings, ds, config, max_users=12).version == oracle.version
    assert (bare_settings.models_dir / "rl" / "cache" / oracle.version / "artifact.json").exists()


def test_candidates_ranked_a_chunk_of_users_at_a_time_are_the_whole_ranking():
    from movierec.rl.world import ranked_candidates

    rng = np.random.default_rng(2)
    # small integers: every product and sum is exact, so the chunks' scores equal the whole matrix's
    users, items = rng.integers(-3, 4, (23, 5)).astype(np.float32), rng.integers(-3, 4, (40, 5)).astype(np.float32)
    bias = rng.integers(-2, 3, 40).astype(np.float32)
    seen = rng.random((23, 40)) < 0.3
    scores = np.where(seen, -np.inf, users @ items.T + bias)
    want = np.argsort(-scores, axis=1, kind="stable")[:, :12]  # ties (there are many) in row order
    for chunk in (1, 7, 23, 1024):
        order, top = ranked_candidates(users, items, bias, seen, 12, chunk_users=chunk)
        np.testing.assert_array_equal(order, want)
        np.testing.assert_array_equal(top, np.take_along_axis(scores, want, 1))
        assert top.dtype == np.float32 and not seen[np.arange(23)[:, None], order[:, :8]].any()
