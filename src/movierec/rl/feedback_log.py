"""Simulated traffic as the real system would log it: served slates and what users did with them.

``simulate_feedback_events`` serves slates with a ``PolicyRanker`` (with its serving exploration)
to simulated users and turns every step into ``FeedbackEvent``s: one impression per shown movie
(with slate, position, propensity and policy version), then a watch and a rating for the chosen
movie. It drives the online-retraining loop in tests and demos without real users. Given a
``decisions`` list, it also logs each slate as the gateway does (``ServedDecision``), and the
slate's events carry its ``decision_id``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import numpy as np

from movierec.contracts.decisions import ServedDecision
from movierec.contracts.feedback import FeedbackEvent
from movierec.rl.ranking import PolicyRanker
from movierec.rl.world import World


def simulate_feedback_events(world: World, ranker: PolicyRanker, user_indices, *, sessions_per_user: int = 1, seed: int = 0,
                             start: datetime | None = None, id_prefix: str = "sim",
                             decisions: list[ServedDecision] | None = None) -> list[FeedbackEvent]:
    rng = np.random.default_rng([seed, 3])
    clock = start or datetime(2026, 1, 1, tzinfo=timezone.utc)
    items = world.items
    events: list[FeedbackEvent] = []
    for s in range(sessions_per_user):
        for u in user_indices:
            u = int(u)
            user_id = int(world.simulator.user_ids[u])
            session = world.simulator.new_session(u, np.random.default_rng([seed, u, s]))
            watched: set[int] = set()
            recent: list[int] = []
            while not session.done:
                rows, scores = world.candidates(u, watched)
                ids = [int(m) for m in items.movie_ids[rows]]
                ranked = ranker.rank(user_id=user_id, user_vector=None, recent_movie_ids=recent[-5:], movie_ids=ids,
                                     scores=[float(x) for x in scores], k=world.config.simulator.slate_size,
                                     session_step=session.steps, rng=rng)
                slate = [r.movie_id for r in ranked]
                tag = f"{id_prefix}-{u}-{s}-{session.steps}"
                decision_id = None
                if decisions is not None:
                    decision_id = hashlib.md5(tag.encode()).hexdigest()
                    decisions.append(ServedDecision(
                        decision_id=decision_id, user_id=user_id, policy_version=ranker.version, served_at=clock.timestamp(),
                        recent_movie_ids=recent[-5:], session_step=session.steps, candidates=ids, scores=[float(x) for x in scores],
                        slate=slate, propensities=[r.propensity for r in ranked]))
                for p, r in enumerate(ranked):
                    events.append(FeedbackEvent(event_id=f"{tag}-i{p}", user_id=user_id, movie_id=r.movie_id, kind="impression",
                                                slate=slate, position=p, propensity=r.propensity, policy_version=ranker.version,
                                                decision_id=decision_id, occurred_at=clock))
                clock += timedelta(seconds=1)
                outcome = session.step(items.index_of(slate))
                if outcome.clicked:
                    movie = slate[outcome.choice]
                    common = dict(user_id=user_id, movie_id=movie, slate=slate, position=outcome.choice,
                                  propensity=ranked[outcome.choice].propensity, policy_version=ranker.version, decision_id=decision_id)
                    events.append(FeedbackEvent(event_id=f"{tag}-w", kind="watch", watch_seconds=round(outcome.watch_minutes * 60, 1),
                                                occurred_at=clock, **common))
                    events.append(FeedbackEvent(event_id=f"{tag}-r", kind="rating", rating=outcome.rating, occurred_at=clock, **common))
                    watched.add(outcome.movie_row)
                    recent.append(movie)
                clock += timedelta(seconds=1)
    return events
