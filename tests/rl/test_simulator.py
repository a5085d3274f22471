"""The simulator: its users prefer what their real ratings say, interest evolves, sessions end."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from movierec.data import load_dataset
from movierec.rl.config import RewardConfig, SimulatorConfig
from movierec.rl.factorization import fit_biased_mf, predict_ratings
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
    uu, mm = np.meshgrid(users, items.movie_ids, indexing="ij")
    taste = predict_ratings(oracle, uu.ravel(), mm.ravel()).reshape(len(users), len(items))
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
