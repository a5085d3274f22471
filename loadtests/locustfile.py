"""Locust users that behave like people on the site (``POST /v1/recommendations`` and friends).

- Known users (most traffic) ask for recommendations, a third of the time with filters; the RL
  simulator's user model (``movierec.rl.simulator`` via ``movierec.benchmarks.simulated_users``)
  decides whether they click one of the first movies shown, how long they watch and how they rate,
  and that is sent back as feedback (click, watch, rating) with the list, position, propensity,
  policy version and the list's decision id. They also open movie pages, search titles and look
  at their profile.
- New users like a few well-known movies and ask for recommendations from them.

Headless, with Locust's CSV and HTML reports (gateway already running on port 8000):

    .venv/bin/locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:8000 \
        -u 20 -r 5 -t 60s --csv var/loadtests/run --html var/loadtests/report.html

``movierec bench locust`` starts the stack first and stops it afterwards. Only loopback hosts are
accepted. Seeds: ``MOVIEREC_LOADTEST_SEED`` (default 0), one stream per simulated user. With
``MOVIEREC_LOADTEST_OUTCOMES`` set to a file, every list a known user was shown is appended
there (time, user, policy version, clicked, watch seconds, rating): the closed-loop run
(``movierec bench closed-loop``) plots CTR and watch time from it.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from urllib.parse import urlparse

import numpy as np
from locust import HttpUser, between, events, task
from locust.exception import StopUser

from movierec.benchmarks.simulated_users import SimulatedAudience, load_audience

AUDIENCE: SimulatedAudience | None = None
OUTCOMES = None
SEEDS = itertools.count(int(os.environ.get("MOVIEREC_LOADTEST_SEED", "0")) * 100_003)
FILTER_SHARE = 1 / 3


@events.init.add_listener
def _load_audience(environment, **_kwargs) -> None:
    global AUDIENCE
    host = environment.host or ""
    if host and urlparse(host).hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"load tests only run against loopback hosts, not {host}")
    AUDIENCE = load_audience()
    global OUTCOMES
    if os.environ.get("MOVIEREC_LOADTEST_OUTCOMES"):
        OUTCOMES = open(os.environ["MOVIEREC_LOADTEST_OUTCOMES"], "a", buffering=1)  # one line per list, appended whole


def _record_outcome(user_id: int, policy_version: str | None, reaction) -> None:
    if OUTCOMES is not None:
        watched = reaction.watch_seconds if reaction else 0.0
        rating = reaction.rating if reaction else ""
        OUTCOMES.write(f"{time.time():.3f},{user_id},{policy_version or ''},{int(reaction is not None)},{watched},{rating}\n")


def _event_id() -> str:
    return f"lt-{uuid.uuid4().hex}"


class _Visitor(HttpUser):
    abstract = True
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        if AUDIENCE is None:
            raise StopUser()
        self.rng = np.random.default_rng(next(SEEDS))
        self.last_list: list[int] = []

    def _movie_id(self) -> int:
        if self.last_list and self.rng.random() < 0.7:
            return int(self.rng.choice(self.last_list))
        return int(self.rng.choice(AUDIENCE.popular_movie_ids))

    @task(2)
    def open_movie_page(self) -> None:
        self.client.get(f"/v1/movies/{self._movie_id()}", name="/v1/movies/[id]")

    @task(1)
    def search_titles(self) -> None:
        self.client.get("/v1/movies", params={"q": str(self.rng.choice(AUDIENCE.titles_words)), "limit": 10}, name="/v1/movies?q=")


class KnownUser(_Visitor):
    weight = 4

    def on_start(self) -> None:
        super().on_start()
        self.session = AUDIENCE.start_session(self.rng)

    def _filters(self) -> dict:
        if self.rng.random() >= FILTER_SHARE:
            return {}
        kind = int(self.rng.integers(4))
        if kind == 0:
            return {"genres_include": [str(g) for g in self.rng.choice(AUDIENCE.genres, size=2, replace=False)]}
        if kind == 1:
            return {"genres_exclude": [str(self.rng.choice(AUDIENCE.genres))]}
        if kind == 2:
            low = int(self.rng.integers(1960, 2005))
            return {"year_min": low, "year_max": low + int(self.rng.integers(5, 20))}
        return {"min_avg_rating": float(self.rng.choice([3.0, 3.5, 4.0]))}

    @task(6)
    def recommendations_and_feedback(self) -> None:
        if self.session.done:
            self.session = AUDIENCE.start_session(self.rng)
        user_id = self.session.user_id
        body = {"user_id": user_id, "k": 10}
        filters = self._filters()
        if filters:
            body["filters"] = filters
        with self.client.post("/v1/recommendations", json=body, name="/v1/recommendations (known user)" + (" + filters" if filters else ""),
                              catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            answer = response.json()
            items = answer.get("items", [])
            if not items and not filters:
                response.failure("no recommendations for a known user")
                return
        self.last_list = [i["movie_id"] for i in items]
        reaction = AUDIENCE.react(self.session, self.last_list) if items else None
        if not filters:  # lists the policy chose freely: what CTR and watch time are measured on
            _record_outcome(user_id, answer.get("policy_version"), reaction)
        if reaction is None:
            return
        served = items[reaction.position]
        common = {"user_id": user_id, "movie_id": reaction.movie_id, "slate": self.last_list, "position": reaction.position,
                  "policy_version": answer.get("policy_version")}
        if served.get("propensity"):
            common["propensity"] = served["propensity"]
        if answer.get("decision_id"):  # the policy values its decision as made (movierec.contracts.decisions)
            common["decision_id"] = answer["decision_id"]
        for extra in ({"kind": "click"}, {"kind": "watch", "watch_seconds": reaction.watch_seconds}, {"kind": "rating", "rating": reaction.rating}):
            self.client.post("/v1/feedback", json={"event_id": _event_id(), **common, **extra}, name=f"/v1/feedback ({extra['kind']})")

    @task(1)
    def own_profile(self) -> None:
        self.client.get(f"/v1/users/{self.session.user_id}", name="/v1/users/[id]")


class NewUser(_Visitor):
    weight = 1

    @task(4)
    def recommendations_from_likes(self) -> None:
        liked = [int(m) for m in self.rng.choice(AUDIENCE.popular_movie_ids, size=int(self.rng.integers(2, 6)), replace=False)]
        with self.client.post("/v1/recommendations", json={"liked_movie_ids": liked, "k": 10}, name="/v1/recommendations (new user)",
                              catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            items = response.json().get("items", [])
            if not items:
                response.failure("no recommendations for a new user")
                return
        self.last_list = [i["movie_id"] for i in items]
