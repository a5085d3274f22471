"""Online retraining: logged feedback -> transitions -> fine-tuned DQN -> off-policy check -> publish.

``retrain_from_events`` is a pure library function (the Celery task only fetches events and calls
it). Steps:

1. Group events into *served slates*. With the gateway's decision log
   (``movierec.contracts.decisions``), every logged decision is a served slate, whether anyone
   reacted to it or not, and the events naming its ``decision_id`` say what the user did with it.
   Without it (an older log, or events without ``decision_id``), events sharing (user, policy
   version, slate) form a slate and its logged propensities come from the events'
   ``position``/``propensity``. The movie the user engaged with (click/watch/rating events) gets
   the step reward of its watch time and rating.
2. Per user, in time order, slates become transitions: the state before, the engaged movie (or,
   for a skipped slate, every shown movie with the skip reward), the state after, and the user's
   next served slate's candidates. A logged decision gives its state and candidates exactly as
   the policy service had them; an event-only slate is rebuilt (the state from the movies watched
   earlier in the log, the shown movies as the only candidates).
3. The current Q-network is fine-tuned on them (double DQN, target network from the current one).
   Only the *fitting* users' slates are used: a seeded share of the logged users
   (``HELD_OUT_SHARE``) is held out.
4. Candidate and current policies are valued off-policy (SNIPS, and IPS for the report) on the
   held-out users' slates, which the candidate never trained on (valued on its own training slates,
   a fine-tuned candidate looks better than it is and was published after every retraining, even
   when it served worse). The candidate is published only if at least ``min_held_out_users``
   users value it and the one-sided lower confidence bound of its SNIPS gain over the current
   policy (paired bootstrap over held-out users) is above ``-tolerance``: with the default 0, only
   a gain the logged data supports is published (a point estimate that is merely not lower
   published noise half the time). Publishing writes a new version and swaps the ``current``
   pointer. Events are read from the last published version on, so while nothing is published
   the evidence keeps growing.
5. The same current version is checked again and again (every few minutes, on growing
   evidence), and a 5% test repeated ten times publishes a candidate with no gain with a
   probability far above 5%. So the ``check``-th check of one current version spends only
   ``check_alpha(check)`` = 5% x 6 / (pi^2 check^2) of the error budget (these sum to 5% over
   all checks): the first check uses a 96.96% bound, the second 99.24%, the tenth 99.97%. A
   closed-loop run published three versions within two minutes before this.

Events that name a decision are used only with it; events that name none (a client that does not
send ``decision_id``, a list served in the ranker's order) still form rebuilt slates, which
include only the lists someone reacted to unless the client logs impressions. Rebuilt slates are
not the decisions as made (finding 17 of ``reports/performance.md``), so their propensities and
SNIPS values are not those of the served policy; ``RetrainResult.current_propensity_gap`` says
by how much (about 0 on logged decisions of the current version).
"""

from __future__ import annotations

import copy
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from movierec.contracts.decisions import ServedDecision
from movierec.contracts.feedback import FeedbackEvent
from movierec.rl.artifact import PolicyArtifact, artifact_from_learner, load_current, publish_policy
from movierec.rl.dqn import DQNLearner, ReplayBuffer
from movierec.rl.off_policy import effective_sample_size, ips, snips
from movierec.rl.ranking import request_state, score_ranks
from movierec.rl.reward import step_reward
from movierec.rl.slate import SlateExploration
from movierec.rl.state import Featurizer, Observation

log = logging.getLogger(__name__)

ENGAGED_KINDS = ("click", "watch", "rating")
HELD_OUT_SHARE = 0.3
"""Share of the logged users whose slates only value the candidate (never train it)."""
BOOTSTRAP_RESAMPLES = 4000
"""Resamples of the held-out users for the lower bound of the candidate's off-policy gain. A tenth
check's bound is the 0.03% quantile, about the lowest of them; later checks get no stricter."""
FAMILY_ALPHA = 0.05
"""Chance, over all the checks of one current version, of publishing a candidate with no gain."""
FINE_TUNE_EPOCHS = 3
"""Passes over the new transitions when retraining. ``movierec rl fine-tune-study`` (seeds 0-2,
softmax serving at temperature 1; finding 26 of ``reports/performance.md``): 1- and 3-epoch
candidates served better and the check published them (3 epochs: 3 of 3, true CTR gains
+0.024 to +0.030); 20-epoch ones drifted further and none was published."""
MIN_HELD_OUT_USERS = 20
"""Fewer held-out users than this value nothing: a bootstrap over a handful of users understates
the spread and its lower bound is too high."""

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``: phases ``training`` (updates), ``valuing`` and ``publishing``."""


@dataclass
class ServedSlate:
    user_id: int
    policy_version: str | None
    slate: list[int]
    first_seen: tuple
    propensities: dict[int, float] = field(default_factory=dict)  # position -> logged propensity
    engaged: int | None = None
    watch_seconds: float | None = None
    rating: float | None = None
    decision: ServedDecision | None = None
    """The gateway's record of this decision, when it was logged."""

    @property
    def clicked(self) -> bool:
        return self.engaged is not None


@dataclass
class RetrainResult:
    status: str  # "published", "kept" or "skipped"
    reason: str
    version: str | None = None
    base_version: str | None = None
    slates: int = 0
    transitions: int = 0
    candidate_snips: float | None = None
    current_snips: float | None = None
    candidate_ips: float | None = None
    current_ips: float | None = None
    units: int = 0
    """Held-out (slate, position) units the policies were valued on."""
    candidate_ess: float | None = None
    """The candidate's effective sample size on them (``off_policy.effective_sample_size``): a
    candidate that orders the lists unlike the logging policy is valued on the few units where
    they agree, and this says how few."""
    current_ess: float | None = None
    """The served policy's (the number of units when it is valued on its own decisions)."""
    decisions: int = 0
    """Served slates taken from the decision log (the rest, if used, are rebuilt from events)."""
    current_slates: int = 0
    """Usable slates the current version served itself (the rest are earlier versions'; right
    after a publish a check may see few or none of its own, and then values it only off-policy
    on lists it did not choose)."""
    gain_lower_bound: float | None = None
    """The lower confidence bound of the candidate's SNIPS gain that decided this check."""
    current_propensity_gap: float | None = None
    """Mean |propensity the served policy gets when recomputed from the log - the one it logged|
    over the held-out units it served itself (decisions of an earlier version, logged before this
    one was loaded, are valued but left out here): 0 when the check sees the decision as it was made. The check
    rebuilds the state from the logged events and scores only the shown movies with the policy's
    own item table, while the service chose among the ranker's candidates with the ranker's
    scores and the gateway's recent movies, so in a live stack this is far from 0 and the SNIPS
    values are not those of the decisions made."""
    last_seq: int | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def served_slates(events: list[FeedbackEvent], decisions: Iterable[ServedDecision] = ()) -> list[ServedSlate]:
    """Events grouped into served slates, in the order they were first seen: one per logged
    decision (with the events that name it), then the events that name no decision grouped by
    (user, version, slate). An event naming a decision that is not among ``decisions`` is left
    out: its slate is valued once its decision is read."""
    logged: dict[str, ServedSlate] = {}
    for d in decisions:
        served_at = datetime.fromtimestamp(d.served_at, timezone.utc)
        logged[d.decision_id] = ServedSlate(d.user_id, d.policy_version, list(d.slate), (served_at, -1),
                                            dict(enumerate(d.propensities)), decision=d)
    latest: dict[tuple, ServedSlate] = {}
    groups: list[ServedSlate] = list(logged.values())
    ordered = sorted(events, key=lambda e: (e.occurred_at, getattr(e, "seq", 0)))
    for i, e in enumerate(ordered):
        if e.decision_id is not None:
            # usable only with its decision: one not read (too young, trimmed) or another user's is left out
            if e.decision_id in logged and logged[e.decision_id].user_id == e.user_id:
                _engage(logged[e.decision_id], e)
            continue
        if not e.slate:
            continue
        key = (e.user_id, e.policy_version, tuple(e.slate))
        g = latest.get(key)
        pos = e.position if e.position is not None else (e.slate.index(e.movie_id) if e.movie_id in e.slate else None)
        # the same slate served again later (a new impression of a position already seen) is a new decision
        if g is None or (e.kind == "impression" and pos in g.propensities):
            g = latest[key] = ServedSlate(e.user_id, e.policy_version, list(e.slate), (e.occurred_at, i))
            groups.append(g)
        if pos is not None and e.propensity is not None:
            g.propensities[pos] = e.propensity
        _engage(g, e)
    return sorted(groups, key=lambda g: g.first_seen)


def _engage(g: ServedSlate, e: FeedbackEvent) -> None:
    """What ``e`` says the user did with the slate: its first engaged movie, that movie's longest
    watch and its rating."""
    if e.kind not in ENGAGED_KINDS or e.movie_id not in g.slate:
        return
    if g.engaged is None:
        g.engaged = e.movie_id
    if e.movie_id == g.engaged:
        if e.kind == "watch" and e.watch_seconds is not None:
            g.watch_seconds = max(g.watch_seconds or 0.0, e.watch_seconds)
        if e.kind == "rating" and e.rating is not None:
            g.rating = e.rating


def _slate_reward(policy: PolicyArtifact, g: ServedSlate) -> float:
    minutes = None if g.watch_seconds is None else g.watch_seconds / 60.0
    return step_reward(policy.config.reward, g.clicked, minutes, g.rating)


@dataclass
class _Decision:
    slate: ServedSlate
    state: np.ndarray
    rows: np.ndarray  # item rows of the candidates the policy chose among (all known)
    scores: np.ndarray  # the ranker's score of each candidate
    ranks: np.ndarray  # each candidate's rank in the ranker's order
    shown: np.ndarray  # the served slate: indices into rows, in position order
    reward: float


def _logged_decision(policy: PolicyArtifact, f: Featurizer, g: ServedSlate, vec: np.ndarray) -> _Decision | None:
    """The decision as the policy service made it (None when it names a movie this policy does not know)."""
    d = g.decision
    rows = policy.items.index_of(d.candidates)
    history = policy.items.index_of(d.recent_movie_ids) if d.recent_movie_ids else np.zeros(0, np.int64)
    where = {m: i for i, m in enumerate(d.candidates)}
    if np.any(rows < 0) or np.any(history < 0) or any(m not in where for m in d.slate):
        return None
    scores = np.asarray(d.scores, np.float32)
    state = request_state(f, vec, history, d.session_step)
    shown = np.array([where[m] for m in d.slate], np.int64)
    return _Decision(g, state, rows, scores, score_ranks(scores), shown, _slate_reward(policy, g))


def _decisions(policy: PolicyArtifact, slates: list[ServedSlate]) -> list[list[_Decision]]:
    """Per user, their usable served slates with the state before each (known users and movies
    only): a logged decision as it was made, any other slate rebuilt from its events."""
    f = policy.featurizer()
    items = policy.items
    by_user: dict[int, list[ServedSlate]] = defaultdict(list)
    for g in slates:
        by_user[g.user_id].append(g)
    out = []
    for user_id, gs in by_user.items():
        vec = policy.user_vector(user_id)
        if vec is None:
            continue
        obs = Observation(vec)  # what the log says the user watched so far, for rebuilt states
        seq = []
        for g in gs:
            rows = items.index_of(g.slate)
            if np.any(rows < 0):
                continue
            if g.decision is not None:
                d = _logged_decision(policy, f, g, vec)
                if d is not None:
                    seq.append(d)
            else:
                scores = (items.vectors[rows] @ vec + items.bias[rows]).astype(np.float32)
                order = np.arange(len(rows))
                seq.append(_Decision(g, f.state(obs), rows, scores, order.astype(np.float32), order, _slate_reward(policy, g)))
            watched_row = int(rows[g.slate.index(g.engaged)]) if g.clicked else None
            fraction = 0.0
            if watched_row is not None and g.watch_seconds is not None:
                fraction = min(1.0, g.watch_seconds / 60.0 / float(items.runtime[watched_row]))
            obs.record(watched_row, fraction, g.rating)
        if seq:
            out.append(seq)
    return out


def split_users(users: list[list[_Decision]], held_out_share: float, seed: int) -> tuple[list[list[_Decision]], list[list[_Decision]]]:
    """(fitting users, held-out users): a seeded ``held_out_share`` of the users (at least one,
    at most all but one) values the candidate; the rest train it."""
    order = np.random.default_rng(seed).permutation(len(users))
    held = min(len(users) - 1, max(1, round(held_out_share * len(users))))
    held_rows = set(order[:held].tolist())
    return ([u for i, u in enumerate(users) if i not in held_rows], [u for i, u in enumerate(users) if i in held_rows])


def _fill_buffer(policy: PolicyArtifact, users: list[list[_Decision]], seed: int) -> ReplayBuffer:
    top_n = policy.config.dqn.top_n
    n = sum(len(ds) * max(len(d.shown) for d in ds) for ds in users)
    buf = ReplayBuffer(max(n, 1), policy.featurizer().state_dim, top_n, seed=seed)
    for ds in users:
        for j, d in enumerate(ds):
            last = j == len(ds) - 1
            nxt = ds[j + 1] if not last else d
            next_rows, next_scores = nxt.rows[:top_n], nxt.scores[:top_n]
            if d.slate.clicked:
                acted = [d.slate.slate.index(d.slate.engaged)]
            else:
                acted = list(range(len(d.shown)))
            for p in acted:
                c = d.shown[p]
                # the user's future beyond the log is unknown: the last slate is terminal
                buf.add(d.state, d.rows[c], d.scores[c], d.ranks[c], d.reward, last, nxt.state, next_rows, next_scores)
    return buf


def _logged_units(learner: DQNLearner, users: list[list[_Decision]], exploration: SlateExploration) -> list[np.ndarray]:
    """Per user, an array (units, 3) of (reward, target propensity, logging propensity) for a
    policy serving this Q-network with ``exploration`` on the user's logged slates."""
    out = []
    for ds in users:
        units = []
        for d in ds:
            logged = sorted(p for p in d.slate.propensities if p < len(d.shown))
            if not logged:
                continue  # nothing says how likely this slate was: it cannot be valued
            # positions without a logged propensity (e.g. a client that logs only watches) are left out
            q = learner.q_values(d.state[None], d.rows[None], d.scores[None], d.ranks[None])[0]
            props = exploration.propensities(q, d.shown)
            engaged = d.slate.slate.index(d.slate.engaged) if d.slate.clicked else None
            units += [(d.reward if p == engaged else 0.0, props[p], d.slate.propensities[p]) for p in logged]
        out.append(np.asarray(units, np.float64).reshape(-1, 3))
    return out


def held_out_valuer(current: PolicyArtifact, events: list[FeedbackEvent], decisions: Iterable[ServedDecision],
                    seed: int) -> Callable[[DQNLearner], list[np.ndarray]]:
    """A function giving, for any Q-network, the units (reward, target propensity, logging
    propensity) per held-out user on which a check of ``current`` with this ``seed`` values it
    (the users ``retrain_from_events`` holds out; the log is read once for every network)."""
    _, held_out = split_users(_decisions(current, served_slates(events, decisions)), HELD_OUT_SHARE, seed)
    return lambda learner: _logged_units(learner, held_out, current.config.dqn.serving_exploration)


def _stacked(per_user: list[np.ndarray]) -> np.ndarray:
    """Every user's units as one (units, 3) array."""
    return np.concatenate(per_user) if per_user else np.zeros((0, 3))


def _estimates(per_user: list[np.ndarray]) -> tuple[float, float, int, float]:
    """SNIPS, IPS, the number of units and their effective sample size."""
    units = _stacked(per_user)
    if not len(units):
        return float("nan"), float("nan"), 0, 0.0
    return (snips(units[:, 0], units[:, 1], units[:, 2]), ips(units[:, 0], units[:, 1], units[:, 2]), len(units),
            effective_sample_size(units[:, 1], units[:, 2]))


def propensity_gap(per_user: list[np.ndarray]) -> float | None:
    """Mean |target propensity - logging propensity| over the units (None without units)."""
    units = _stacked(per_user)
    return float(np.abs(units[:, 1] - units[:, 2]).mean()) if len(units) else None


def check_alpha(check: int) -> float:
    """The error budget the ``check``-th check of one current version may spend (1-based):
    ``FAMILY_ALPHA`` x 6 / (pi^2 check^2), which sums to ``FAMILY_ALPHA`` over all checks."""
    if check < 1:
        raise ValueError(f"check numbers start at 1, got {check}")
    return FAMILY_ALPHA * 6.0 / (np.pi ** 2 * check ** 2)


def snips_gain_lower_bound(candidate: list[np.ndarray], current: list[np.ndarray], seed: int,
                           resamples: int = BOOTSTRAP_RESAMPLES, alpha: float = FAMILY_ALPHA) -> float:
    """One-sided (1 - ``alpha``) lower bound of SNIPS(candidate) - SNIPS(current), by a paired
    bootstrap over users (both policies are valued on the same resampled users' slates)."""
    rng = np.random.default_rng(seed)
    sums = np.array([[(u[:, 0] * u[:, 1] / u[:, 2]).sum(), (u[:, 1] / u[:, 2]).sum()] for u in candidate])
    base = np.array([[(u[:, 0] * u[:, 1] / u[:, 2]).sum(), (u[:, 1] / u[:, 2]).sum()] for u in current])
    picks = rng.integers(0, len(candidate), (resamples, len(candidate)))
    cand, cur = sums[picks].sum(1), base[picks].sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        gains = cand[:, 0] / cand[:, 1] - cur[:, 0] / cur[:, 1]
    gains = gains[np.isfinite(gains)]
    return float(np.quantile(gains, alpha)) if len(gains) else float("-inf")


def retrain_from_events(
    events: list[FeedbackEvent],
    policy_dir: Path,
    *,
    decisions: Iterable[ServedDecision] = (),
    min_slates: int = 20,
    epochs: int = FINE_TUNE_EPOCHS,
    tolerance: float = 0.0,
    seed: int = 0,
    publish: bool = True,
    check: int = 1,
    min_held_out_users: int = MIN_HELD_OUT_USERS,
    progress: Progress | None = None,
) -> RetrainResult:
    """Fine-tune the published policy on logged feedback and publish it only if held-out users' slates show a gain.

    ``check``: how many times the current version has now been checked, this time included (the
    bound's confidence grows with it, ``check_alpha``); the caller counts, ``run_retraining`` in
    its state file.
    ``decisions``: the gateway's decision log over the same period (see ``served_slates``).
    ``progress`` (optional) is told the phase and, while training, every update done; whoever
    passes it decides how often to forward that (it is called once per gradient step)."""
    progress = progress or (lambda phase, done, total: None)
    current = load_current(policy_dir)
    last_seq = max((getattr(e, "seq", 0) for e in events), default=None)
    if current is None:
        return RetrainResult("skipped", "no published DQN policy to fine-tune (run `movierec rl train`)", last_seq=last_seq)
    slates = served_slates(events, decisions)
    users = _decisions(current, slates)
    n_slates = sum(len(ds) for ds in users)
    from_log = sum(d.slate.decision is not None for ds in users for d in ds)
    own_slates = sum(d.slate.policy_version == current.version for ds in users for d in ds)
    base = RetrainResult("skipped", "", base_version=current.version, slates=n_slates, decisions=from_log, current_slates=own_slates,
                         last_seq=last_seq)
    if n_slates < min_slates:
        base.reason = f"{n_slates} usable served slates, fewer than the {min_slates} needed"
        return base
    if len(users) < 2:
        base.reason = f"slates of {len(users)} user(s): at least 2 are needed to hold some out for the off-policy check"
        return base
    fitting, held_out = split_users(users, HELD_OUT_SHARE, seed)
    if len(held_out) < min_held_out_users:
        base.reason = (f"slates of {len(users)} users: {len(held_out)} would be held out to value the candidate, "
                       f"fewer than the {min_held_out_users} needed")
        return base
    torch.manual_seed(seed)
    buffer = _fill_buffer(current, fitting, seed)
    learner = current.learner()
    d = current.config.dqn
    batch = min(d.batch_size, len(buffer))
    updates = max(1, epochs * len(buffer) // batch)
    for done in range(updates):
        progress("training", done, updates)
        learner.update(buffer, batch)
    progress("valuing", updates, updates)
    base_learner = current.learner()
    explore = d.serving_exploration
    cand_units, cur_units = _logged_units(learner, held_out, explore), _logged_units(base_learner, held_out, explore)
    cand_snips, cand_ips, units, cand_ess = _estimates(cand_units)
    cur_snips, cur_ips, _, cur_ess = _estimates(cur_units)
    base.units, base.candidate_ess, base.current_ess = units, cand_ess, cur_ess
    # the gap is about the served version's own decisions: others' logged propensities differ by design
    own = [[x for x in ds if x.slate.policy_version == current.version] for ds in held_out]
    base.current_propensity_gap = propensity_gap(_logged_units(base_learner, own, explore))
    base.transitions = len(buffer)
    base.candidate_snips, base.current_snips, base.candidate_ips, base.current_ips = cand_snips, cur_snips, cand_ips, cur_ips
    if units == 0:
        base.reason = "no served slate has a logged propensity: cannot value off-policy"
        return base
    alpha = check_alpha(check)
    gain_low = base.gain_lower_bound = snips_gain_lower_bound(cand_units, cur_units, seed, alpha=alpha)
    bound = f"the {1 - alpha:.2%} lower bound of the gain (check {check} of {current.version})"
    if not gain_low > -tolerance:
        base.status, base.reason = "kept", (f"candidate SNIPS {cand_snips:.4f} vs current {cur_snips:.4f}: {bound}, "
                                            f"{gain_low:+.4f}, is not above {-tolerance:+.4f}")
        return base
    metadata = copy.deepcopy(current.metadata)
    metadata.update({
        "parent_version": current.version, "trained_on": "feedback", "slates": n_slates, "transitions": len(buffer),
        "last_seq": last_seq, "logged_decisions": from_log, "off_policy": {"candidate_snips": cand_snips, "current_snips": cur_snips,
                                              "candidate_ips": cand_ips, "current_ips": cur_ips, "units": units, "candidate_ess": cand_ess,
                                              "valued_on_held_out_users": len(held_out), "gain_lower_bound": gain_low,
                                              "check": check, "alpha": alpha,
                                              "current_propensity_gap": base.current_propensity_gap},
    })
    artifact = artifact_from_learner(learner, current.config, current.items, current.user_ids, current.user_vectors, metadata)
    base.version = artifact.version
    if publish:
        progress("publishing", updates, updates)
        publish_policy(artifact, policy_dir)
        base.status, base.reason = "published", (f"candidate SNIPS {cand_snips:.4f} vs current {cur_snips:.4f}: {bound}, "
                                                 f"{gain_low:+.4f}, is above {-tolerance:+.4f}")
    else:
        base.status, base.reason = "kept", "dry run: not published"
    log.info("policy retraining: %s (%s)", base.status, base.reason)
    return base
