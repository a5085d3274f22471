"""Grafana provisioning is complete; Debian's Prometheus scrapes a locally started stack and
every dashboard panel's query returns data (the full stack runs in test_end_to_end.py)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from movierec.launcher.stack import LocalStack, StackOptions
from movierec.settings import REPO_ROOT, Settings

GRAFANA = REPO_ROOT / "infra" / "grafana"


def test_dashboards_are_provisioned_and_every_panel_has_a_query():
    import json

    dashboards = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert dashboards, "no dashboards under infra/grafana/dashboards"
    assert "http://prometheus:9090" in (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    assert "/var/lib/grafana/dashboards" in (GRAFANA / "provisioning" / "dashboards" / "movierec.yml").read_text()
    titles = []
    for path in dashboards:
        for panel in json.loads(path.read_text())["panels"]:
            titles.append(panel["title"])
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
    text = " ".join(titles).lower()
    for topic in ("request rate", "errors", "latency", "cache hit rate", "fallbacks", "model", "policy", "celery task outcomes"):
        assert topic in text, f"no panel about {topic}"


@pytest.mark.integration
@pytest.mark.slow
def test_prometheus_scrapes_the_feedback_service_and_worker(tmp_path, database_url, redis_url, port_offsets,
                                                           prometheus_installed, prometheus_check):
    settings = Settings(home=tmp_path / "home")
    options = StackOptions(services=("feedback",), pipeline=False, database_url=database_url, redis_url=redis_url,
                           prometheus=True, port_offset=port_offsets(), ready_timeout_s=120)
    with LocalStack(settings, options, say=lambda m: None) as stack:
        with httpx.Client(base_url=stack.url("feedback"), timeout=10) as client:
            for i in range(20):  # created, duplicate and invalid events
                body = {"event_id": f"obs-{uuid.uuid4().hex}", "user_id": 1 + i % 3, "movie_id": 1 + i, "kind": "click"}
                assert client.post("/v1/events", json=body).status_code == 201
                assert client.post("/v1/events", json=body).status_code == 200
                assert client.post("/v1/events", json={**body, "rating": 9}).status_code == 422
        assert prometheus_check(stack) >= 6
