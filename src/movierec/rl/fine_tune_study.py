"""How long online fine-tuning should run: the off-policy check's view of each candidate against
its true value in the simulator.

The served policy serves simulated sessions to some users, logged as the gateway logs them
(``simulate_feedback_events`` with decisions). For each number of fine-tuning epochs, online
retraining (``retrain_from_events``) fine-tunes a candidate on that log and values it off-policy on
its held-out users (SNIPS, the effective sample size of its weights, the lower bound of its gain
that decides a first check). Then the candidate and the served policy each serve the same
sessions (same simulator seeds) to other users, never logged: the gain the check tries to
estimate, measured on-policy. A candidate that moves far from the served policy can only be
valued on a few explored positions (a small ESS); this shows whether fewer epochs keep it
valuable and whether they still gain. Each candidate is also valued with its importance weights
capped (``caps``; clipped importance sampling), to see whether a capped check would see the gain,
and an untrained Q-network is valued the same way as a negative control, which a check must
refuse. ``movierec rl fine-tune-study`` runs it; ``movierec bench serving`` reports its records.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from movierec.rl.artifact import PolicyArtifact, artifact_from_learner, load_current, publish_policy
from movierec.rl.dqn import DQNLearner
from movierec.rl.feedback_log import simulate_feedback_events
from movierec.rl.off_policy import clipped_units, effective_sample_size, snips
from movierec.rl.online import MIN_HELD_OUT_USERS, check_alpha, held_out_valuer, retrain_from_events, snips_gain_lower_bound
from movierec.rl.ranking import PolicyRanker
from movierec.rl.world import World

NEVER_REFUSE = 1e9
"""Tolerance that publishes every candidate into the study's scratch folder, so each one can be
served; whether the check would have published it is read from its lower bound."""


@dataclass(frozen=True)
class ServedValue:
    lists: int
    ctr: float
    watch_minutes_per_list: float


@dataclass(frozen=True)
class OffPolicyView:
    """The check's view of a candidate with its weights capped at ``cap`` (None: as the check)."""

    cap: float | None
    gain: float
    """SNIPS of the candidate minus SNIPS of the served policy on the held-out units."""
    candidate_ess: float
    gain_lower_bound: float
    """At the first check's confidence (``check_alpha(1)``)."""


@dataclass(frozen=True)
class CandidateRow:
    label: str
    """``N epochs`` for a fine-tuned candidate; ``untrained`` for the negative control."""
    units: int
    """Held-out (slate, position) units the check values it on."""
    views: list[OffPolicyView]
    """The check's view (cap None, what decides a publish) and the capped ones."""
    candidate: ServedValue
    served: ServedValue
    ctr_gain: float
    ctr_gain_half_width: float
    """95% half-width of the CTR gain, paired over the evaluation users."""

    @property
    def would_publish(self) -> bool:
        """The first check's bound above 0."""
        return self.views[0].gain_lower_bound > 0


def served_value(world: World, policy: PolicyArtifact, users: np.ndarray, seed: int) -> tuple[ServedValue, np.ndarray]:
    """CTR and watch minutes per list when ``policy`` serves ``users`` (with its serving
    exploration), and each user's CTR (for paired comparisons on the same simulator seeds)."""
    decisions: list = []
    events = simulate_feedback_events(world, PolicyRanker(policy), users, seed=seed, decisions=decisions, id_prefix="value")
    clicked = {e.decision_id for e in events if e.kind == "watch"}
    watch = sum(e.watch_seconds or 0.0 for e in events if e.kind == "watch") / 60.0
    per_user: dict[int, list[bool]] = {}
    for d in decisions:
        per_user.setdefault(d.user_id, []).append(d.decision_id in clicked)
    user_ctr = np.array([np.mean(per_user.get(int(world.simulator.user_ids[u]), [False])) for u in users])
    n = max(1, len(decisions))
    return ServedValue(len(decisions), len(clicked) / n, watch / n), user_ctr


def off_policy_views(cand_units: list[np.ndarray], cur_units: list[np.ndarray], caps: list[float | None], seed: int) -> list[OffPolicyView]:
    """The candidate's gain over the served policy, its ESS and the first check's lower bound, per cap."""
    views = []
    for cap in caps:
        cand = cand_units if cap is None else [clipped_units(u, cap) for u in cand_units]
        cur = cur_units if cap is None else [clipped_units(u, cap) for u in cur_units]
        a, b = np.concatenate(cand), np.concatenate(cur)
        views.append(OffPolicyView(cap, snips(*a.T) - snips(*b.T), effective_sample_size(a[:, 1], a[:, 2]),
                                   snips_gain_lower_bound(cand, cur, seed, alpha=check_alpha(1))))
    return views


def run_study(world: World, served: PolicyArtifact, epochs: list[int], *, log_users: np.ndarray, eval_users: np.ndarray,
              seed: int, caps: tuple[float, ...] = (), negative_control: bool = True, min_held_out_users: int = MIN_HELD_OUT_USERS,
              say: Callable[[str], None] = print) -> list[CandidateRow]:
    """One candidate per entry of ``epochs``, fine-tuned on the served policy's log of
    ``log_users`` (the check holds some of them out) and served on-policy to ``eval_users``;
    with ``negative_control``, also an untrained Q-network (a candidate worse than the served
    policy, which a check must refuse)."""
    decisions: list = []
    events = simulate_feedback_events(world, PolicyRanker(served), log_users, seed=seed, decisions=decisions, id_prefix="log")
    say(f"logged {len(decisions)} lists of {len(log_users)} users served by {served.version}")
    base, base_users = served_value(world, served, eval_users, seed + 1)
    units_of = held_out_valuer(served, events, decisions, seed)
    served_units = units_of(served.learner())
    candidates: list[tuple[str, PolicyArtifact]] = []
    for n in epochs:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            publish_policy(served, folder)
            result = retrain_from_events(events, folder, decisions=decisions, epochs=n, tolerance=NEVER_REFUSE, seed=seed,
                                          min_held_out_users=min_held_out_users)
            if result.status != "published":
                say(f"{n} epochs: {result.status} ({result.reason})")
                continue
            candidates.append((f"{n} epochs", load_current(folder)))
    if negative_control:
        d = served.config.dqn
        untrained = DQNLearner(served.featurizer(), top_n=d.top_n, hidden=d.hidden, gamma=d.gamma, lr=d.lr, tau=d.target_tau, seed=seed)
        candidates.append(("untrained", artifact_from_learner(untrained, served.config, served.items, served.user_ids,
                                                              served.user_vectors, served.metadata)))
    rows = []
    for label, candidate in candidates:
        value, cand_users = served_value(world, candidate, eval_users, seed + 1)
        units = units_of(candidate.learner())
        views = off_policy_views(units, served_units, [None, *caps], seed)
        diff = cand_users - base_users
        half = 1.96 * float(diff.std(ddof=1)) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        row = CandidateRow(label, int(sum(len(u) for u in units)), views, value, base, value.ctr - base.ctr, half)
        say(f"{label}: served on-policy CTR {value.ctr:.4f} vs {base.ctr:.4f} ({row.ctr_gain:+.4f} +- {half:.4f}); "
            f"the check on {row.units} held-out units:")
        for v in views:
            say(f"  weights {'as logged' if v.cap is None else f'capped at {v.cap:g}'}: SNIPS gain {v.gain:+.4f}, "
                f"ESS {v.candidate_ess:.1f}, bound {v.gain_lower_bound:+.4f} (check 1 at {1 - check_alpha(1):.2%})")
        rows.append(row)
    return rows


def as_records(rows: list[CandidateRow]) -> list[dict]:
    return [{**asdict(r), "would_publish": r.would_publish} for r in rows]
