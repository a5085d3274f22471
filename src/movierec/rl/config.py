"""Typed configurations of the simulator, the reward, the DQN and the benchmark.

Every config rejects unknown keys, so a typo in a config file is an error, not a silent default.
The simulator's parameters and their effect are described in ``reports/rl.md``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from movierec.rl.slate import SlateExploration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class SimulatorConfig(_Strict):
    """A RecSim interest-evolution style user, grounded in one MovieLens user's ratings."""

    slate_size: int = Field(5, ge=1, le=50)
    """Movies shown per step; the user picks at most one."""
    oracle_dim: int = Field(32, ge=2, le=256)
    """Factors of the hidden-taste model fitted on all of a user's ratings."""
    choice_temperature: float = Field(0.3, gt=0)
    """Softness of the multinomial-logit choice, in stars: lower is a pickier user."""
    no_click_utility: float = Field(3.8, ge=0.5, le=5.0)
    """Utility (in stars) of choosing nothing: slates below it are mostly skipped."""
    position_penalty: float = Field(0.05, ge=0)
    """Stars of utility lost per slate position (users look at the top first)."""
    boredom_gain: float = Field(0.35, ge=0, le=1)
    """How far each genre of a watched movie moves towards full boredom (0..1)."""
    boredom_decay: float = Field(0.15, ge=0, le=1)
    """Share of every genre's boredom that fades each step."""
    boredom_weight: float = Field(1.5, ge=0)
    """Stars of enjoyment lost at full boredom with all of a movie's genres."""
    watch_midpoint: float = Field(3.0, ge=0.5, le=5.0)
    """Enjoyment (stars) at which a user watches half of a movie on average."""
    watch_scale: float = Field(0.35, gt=0)
    """Spread of the watch-fraction sigmoid, in stars."""
    watch_noise: float = Field(0.08, ge=0)
    """Standard deviation of the noise on the watched fraction."""
    rating_noise: float = Field(0.4, ge=0)
    """Standard deviation of the noise on a given rating (stars)."""
    default_runtime_minutes: float = Field(100.0, gt=0)
    """Runtime of movies without TMDB data."""
    session_budget_minutes: float = Field(480.0, gt=0)
    """Mean time a user is willing to spend in a session."""
    budget_spread: float = Field(0.25, ge=0)
    """Log-normal spread of the session budget across sessions."""
    extension_minutes_per_star: float = Field(25.0, ge=0)
    """Minutes a watched movie adds to the budget per star above ``neutral_rating`` (removes below)."""
    neutral_rating: float = Field(3.0, ge=0.5, le=5.0)
    browse_minutes: float = Field(8.0, ge=0)
    """Minutes a skipped slate costs (browsing without watching)."""
    max_steps: int = Field(40, ge=1, le=1000)
    """Hard cap on slates per session."""


class RewardConfig(_Strict):
    """Reward of one step: watch time (long positive, short negative) plus the rating."""

    watch_weight: float = Field(1.0, ge=0)
    """Reward per hour watched, for watches of at least ``long_watch_minutes``."""
    long_watch_minutes: float = Field(30.0, ge=0)
    short_watch_minutes: float = Field(10.0, ge=0)
    short_watch_penalty: float = Field(0.5, ge=0)
    """Reward subtracted for a watch shorter than ``short_watch_minutes``."""
    rating_weight: float = Field(0.5, ge=0)
    """Reward per star above ``rating_center``."""
    rating_center: float = Field(3.0, ge=0.5, le=5.0)
    skip_reward: float = Field(0.0)
    """Reward of a slate where nothing was chosen."""


class DQNConfig(_Strict):
    """Double DQN with replay and a target network; one Q-value per (state, movie)."""

    top_n: int = Field(50, ge=2, le=1000)
    """Ranker candidates the policy chooses the slate from."""
    history: int = Field(5, ge=1, le=20)
    """Last watched movies in the state."""
    hidden: int = Field(128, ge=8)
    gamma: float = Field(0.9, ge=0, lt=1)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(128, ge=8)
    replay_capacity: int = Field(100_000, ge=100)
    parallel_sessions: int = Field(32, ge=1)
    iterations: int = Field(1000, ge=1)
    """Lock-step simulator steps over ``parallel_sessions`` sessions."""
    updates_per_iteration: int = Field(1, ge=1)
    warmup_transitions: int = Field(1000, ge=0)
    target_tau: float = Field(0.01, gt=0, le=1)
    """Polyak rate of the target network."""
    epsilon_start: float = Field(1.0, ge=0, le=1)
    epsilon_end: float = Field(0.05, ge=0, le=1)
    epsilon_decay_share: float = Field(0.5, gt=0, le=1)
    """Share of the iterations over which exploration decays linearly."""
    serving_epsilon: float = Field(0.05, gt=0, le=1)
    """Exploration when served, so every slate has logged propensities above zero."""
    serving_temperature: float = Field(1.0, ge=0)
    """0: served epsilon-greedy; > 0: the rest of the time a softmax of Q / (temperature x the
    candidates' Q standard deviation) instead of the best movie (``movierec.rl.slate``), so
    candidates near the served policy can be valued. 1.0 from ``movierec rl fine-tune-study``
    (seeds 0-2, finding 26 of ``reports/performance.md``): epsilon-greedy let the check publish
    none of 12 better candidates, 1.0 seven, with no lower on-policy CTR. Policies published
    before this setting existed keep epsilon-greedy (their saved config lacks it)."""

    @property
    def serving_exploration(self) -> SlateExploration:
        return SlateExploration(self.serving_epsilon, self.serving_temperature)


class ExperimentConfig(_Strict):
    """One benchmark: every policy on the same held-out simulated users, over several seeds."""

    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1)
    split_kind: str = "random"
    split_seed: int = 0
    ranker_dim: int = Field(32, ge=2, le=256)
    min_item_ratings: int = Field(5, ge=1)
    """Movies with fewer training ratings are outside the simulated catalog."""
    eval_user_share: float = Field(0.2, gt=0, lt=1)
    """Users held out from DQN training and used for evaluation."""
    eval_sessions_per_user: int = Field(2, ge=1)
    long_tail_head_share: float = Field(0.2, gt=0, lt=1)
    """The most popular share of the catalog counted as the head; the rest is the long tail."""
    linucb_alpha: float = Field(0.5, ge=0)
    simulator: SimulatorConfig = SimulatorConfig()
    reward: RewardConfig = RewardConfig()
    dqn: DQNConfig = DQNConfig()


def apply_overrides(config: ExperimentConfig, overrides: dict) -> ExperimentConfig:
    """A copy of ``config`` with dotted keys replaced (``{"dqn.iterations": 500}``); validated again."""
    data = config.model_dump()
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise KeyError(dotted)
            node = node[key]
        if leaf not in node:
            raise KeyError(dotted)
        node[leaf] = value
    return ExperimentConfig.model_validate(data)
