"""A short Locust run against the real stack: no request may fail."""

from __future__ import annotations

import pytest

from movierec.benchmarks.locust_run import LocustError, run_locust

MIN_REQUESTS = 40


@pytest.mark.integration
@pytest.mark.slow
def test_locust_smoke_run_has_no_failures(running_stack, tmp_path):
    summary = run_locust(running_stack.url("gateway"), tmp_path / "locust", users=8, spawn_rate=4, run_time_s=30, seed=0)
    failed = [f"{e.name}: {e.failures}" for e in summary.endpoints if e.failures]
    assert summary.total.failures == 0, f"failed requests: {failed}; see {summary.html}"
    assert summary.total.requests >= MIN_REQUESTS
    assert summary.requests_to("/v1/recommendations (known user)") > 0
    assert summary.requests_to("/v1/recommendations (new user)") > 0
    assert summary.requests_to("/v1/feedback") > 0  # the simulated users clicked, watched and rated something
    assert summary.html.exists() and summary.html.stat().st_size > 1000


def test_locust_refuses_a_non_loopback_host(tmp_path):
    with pytest.raises(LocustError, match="loopback"):
        run_locust("http://example.com", tmp_path)
