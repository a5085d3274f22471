"""The served policy, hot-reloaded: requests check the ``current`` pointer at most every few
seconds; a new version is loaded beside the old one and swapped in with one assignment, so a
request in flight finishes with the policy it started with and none is dropped."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from movierec.rl.artifact import current_version, load_policy
from movierec.rl.ranking import GREEDY_VERSION, PolicyRanker

log = logging.getLogger("movierec.policy")


class PolicyHolder:
    def __init__(self, policy_dir: Path, reload_interval_s: float, registry: CollectorRegistry):
        self.policy_dir = Path(policy_dir)
        self.reload_interval_s = reload_interval_s
        self.ranker: PolicyRanker | None = None
        self.last_error: str | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()
        self.reloads = Counter("policy_reloads_total", "Policy version loads", ["outcome"], registry=registry)
        self.loaded_at = Gauge("policy_loaded_timestamp_seconds", "When the served policy was loaded", registry=registry)

    @property
    def version(self) -> str:
        ranker = self.ranker
        return ranker.version if ranker is not None else GREEDY_VERSION

    def check_due(self) -> bool:
        """Whether the next ``current`` call reads the pointer (and may load a new version)."""
        return time.monotonic() - self._checked_at >= self.reload_interval_s

    def current(self) -> PolicyRanker | None:
        """The policy to serve this request with (None: pass the ranker's order through)."""
        if time.monotonic() - self._checked_at >= self.reload_interval_s and self._lock.acquire(blocking=False):
            try:
                self._checked_at = time.monotonic()
                self._reload_if_changed()
            finally:
                self._lock.release()
        return self.ranker

    def _reload_if_changed(self) -> None:
        wanted = current_version(self.policy_dir)
        if wanted is None or wanted == self.version:
            return
        try:
            ranker = PolicyRanker(load_policy(self.policy_dir / wanted))
        except Exception as exc:  # noqa: BLE001 - a broken artifact must not stop serving the old one
            self.last_error = f"policy {wanted} failed to load: {exc}"
            log.error(self.last_error)
            self.reloads.labels("failed").inc()
            return
        self.ranker = ranker  # one assignment: requests see the old or the new policy, never a mix
        self.last_error = None
        self.loaded_at.set_to_current_time()
        self.reloads.labels("loaded").inc()
        log.info("serving policy %s", wanted)
