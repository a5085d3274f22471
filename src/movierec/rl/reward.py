"""The step reward: watch time (long watches positive, short ones negative) plus the rating."""

from __future__ import annotations

from movierec.rl.config import RewardConfig


def step_reward(config: RewardConfig, clicked: bool, watch_minutes: float | None, rating: float | None) -> float:
    """Reward of one served slate given what the user did with it.

    A watch of at least ``long_watch_minutes`` earns ``watch_weight`` per hour; one shorter than
    ``short_watch_minutes`` costs ``short_watch_penalty``; in between earns nothing. A rating adds
    ``rating_weight`` per star above ``rating_center``. A slate with no click earns ``skip_reward``.
    """
    if not clicked:
        return config.skip_reward
    reward = 0.0
    if watch_minutes is not None:
        if watch_minutes >= config.long_watch_minutes:
            reward += config.watch_weight * watch_minutes / 60.0
        elif watch_minutes < config.short_watch_minutes:
            reward -= config.short_watch_penalty
    if rating is not None:
        reward += config.rating_weight * (rating - config.rating_center)
    return reward
