"""``SteadyLoad``: a bounded, paced request loop on loopback, recording every outcome.

One thread sends requests one after another at most ``rate_per_s`` a second, until ``stop()`` or
its bounds (``max_requests``, ``max_s``) are reached. Each outcome keeps its time, status, whether
the answer said it was degraded, and whether the request was acknowledged (for writes).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import httpx

RequestFactory = Callable[[int], tuple[str, str, dict]]
"""n -> (method, path, httpx keyword arguments) of the n-th request."""


@dataclass(frozen=True)
class Outcome:
    t: float
    """Seconds since the load started."""
    status: int | None
    """None: no HTTP answer (connection refused, timeout)."""
    degraded: bool = False
    key: str | None = None
    """What the request wrote (an event id) or what kind of request it was."""
    label: str | None = None
    """The answer's ``policy_version``, or for a 5xx its error code and message."""
    error: str | None = None


@dataclass
class LoadSummary:
    outcomes: list[Outcome] = field(default_factory=list)
    duration_s: float = 0.0
    rate_per_s: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.outcomes)

    @property
    def errors_5xx(self) -> int:
        return sum(1 for o in self.outcomes if o.status is not None and o.status >= 500)

    @property
    def transport_errors(self) -> int:
        return sum(1 for o in self.outcomes if o.status is None)

    @property
    def degraded(self) -> int:
        return sum(1 for o in self.outcomes if o.degraded)

    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            name = str(o.status) if o.status is not None else "no answer"
            counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items()))

    def acknowledged_keys(self) -> set[str]:
        """Keys of writes the server acknowledged (2xx)."""
        return {o.key for o in self.outcomes if o.key and o.status is not None and 200 <= o.status < 300}

    def labels(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            if o.label:
                counts[o.label] = counts.get(o.label, 0) + 1
        return counts

    def first_healthy_after(self, t: float, key: str | None = None) -> float | None:
        """Time of the first 2xx, not degraded answer at or after ``t`` (to requests of ``key``)."""
        for o in self.outcomes:
            if key is not None and o.key != key:
                continue
            if o.t >= t and o.status is not None and 200 <= o.status < 300 and not o.degraded:
                return o.t
        return None


class SteadyLoad:
    def __init__(self, base_url: str, make_request: RequestFactory, *, rate_per_s: float = 10.0, max_requests: int = 2000,
                 max_s: float = 120.0, timeout_s: float = 5.0, key_of: Callable[[dict], str | None] | None = None):
        self.base_url = base_url
        self.make_request = make_request
        self.rate_per_s = rate_per_s
        self.max_requests = max_requests
        self.max_s = max_s
        self.timeout_s = timeout_s
        self.key_of = key_of or (lambda kwargs: None)
        self.summary = LoadSummary(rate_per_s=rate_per_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)
        self._start = 0.0

    def now(self) -> float:
        """Seconds since the load started (the clock outcomes are stamped with)."""
        return time.monotonic() - self._start

    def start(self) -> "SteadyLoad":
        self._start = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> LoadSummary:
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 5)
        self.summary.duration_s = self.now()
        return self.summary

    def wait_until(self, predicate: Callable[[LoadSummary], bool], timeout_s: float, poll_s: float = 0.2) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.summary):
                return True
            time.sleep(poll_s)
        return False

    def _run(self) -> None:
        interval = 1.0 / self.rate_per_s
        with httpx.Client(base_url=self.base_url, timeout=self.timeout_s) as client:
            n = 0
            while not self._stop.is_set() and n < self.max_requests and self.now() < self.max_s:
                due = n * interval
                if due > self.now():
                    self._stop.wait(due - self.now())
                    continue
                method, path, kwargs = self.make_request(n)
                sent_at = self.now()
                try:
                    response = client.request(method, path, **kwargs)
                except httpx.HTTPError as exc:
                    self.summary.outcomes.append(Outcome(sent_at, None, key=self.key_of(kwargs), error=type(exc).__name__))
                else:
                    degraded, label = _read_answer(response)
                    self.summary.outcomes.append(Outcome(sent_at, response.status_code, degraded=degraded, key=self.key_of(kwargs), label=label))
                n += 1


def _read_answer(response: httpx.Response) -> tuple[bool, str | None]:
    """(degraded, policy_version) from a JSON answer."""
    if "json" not in response.headers.get("content-type", ""):
        return False, None
    try:
        body = response.json()
    except ValueError:
        return False, None
    if not isinstance(body, dict):
        return False, None
    if response.status_code >= 500 and isinstance(body.get("error"), dict):  # say which error, for the report
        return False, f"{response.status_code} {body['error'].get('code')}: {str(body['error'].get('message'))[:100]}"
    version = body.get("policy_version")
    return bool(body.get("degraded")), version if isinstance(version, str) else None
