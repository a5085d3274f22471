"""Debian's Prometheus scrapes a locally started stack; every dashboard panel's query has data."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import pytest

from movierec.launcher.stack import LocalStack, StackOptions
from movierec.settings import REPO_ROOT, Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DASHBOARDS = sorted((REPO_ROOT / "infra" / "grafana" / "dashboards").glob("*.json"))
PROMQL_WORDS = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def panel_queries() -> list[tuple[str, str]]:
    queries = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            queries += [(f"{path.stem}: {panel['title']}", t["expr"]) for t in panel.get("targets", [])]
    return queries


def metric_families(exposition: str) -> set[str]:
    return {line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE ")}


def referenced_families(expr: str, known: set[str]) -> set[str]:
    """Metric families a query reads (``_bucket``/``_total`` series map to their family)."""
    found = set()
    for word in PROMQL_WORDS.findall(re.sub(r'"[^"]*"', "", expr)):
        for family in (word, word.removesuffix("_bucket"), word.removesuffix("_total")):
            if family in known:
                found.add(family)
    return found


def test_dashboards_are_provisioned_and_every_panel_has_a_query():
    assert DASHBOARDS, "no dashboards under infra/grafana/dashboards"
    provisioning = (REPO_ROOT / "infra" / "grafana" / "provisioning")
    assert "http://prometheus:9090" in (provisioning / "datasources" / "prometheus.yml").read_text()
    assert "/var/lib/grafana/dashboards" in (provisioning / "dashboards" / "movierec.yml").read_text()
    for title, expr in panel_queries():
        assert expr.strip(), title


@pytest.fixture(scope="module")
def observed_stack(tmp_path_factory, database_url: str, redis_url: str, port_offsets, prometheus_installed):
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    options = StackOptions(services=("feedback",), pipeline=False, database_url=database_url, redis_url=redis_url,
                           prometheus=True, port_offset=port_offsets(), ready_timeout_s=120)
    with LocalStack(settings, options, say=lambda m: None) as stack:
        yield stack


def _query(prom: str, expr: str) -> list:
    body = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


def test_prometheus_scrapes_every_target_and_every_panel_has_data(observed_stack: LocalStack):
    feedback = observed_stack.url("feedback")
    with httpx.Client(timeout=10) as client:
        for i in range(30):  # traffic: created, duplicate and invalid events
            body = {"event_id": f"obs-{uuid.uuid4().hex}", "user_id": 1 + i % 3, "movie_id": 1 + i, "kind": "click"}
            assert client.post(f"{feedback}/v1/events", json=body).status_code == 201
            assert client.post(f"{feedback}/v1/events", json=body).status_code == 200
            assert client.post(f"{feedback}/v1/events", json={**body, "rating": 9}).status_code == 422

    prom = observed_stack.prometheus_url
    jobs = set(observed_stack.scrape_ports())
    deadline = time.monotonic() + 90
    while True:
        targets = httpx.get(f"{prom}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        ready = set(health) == jobs and all(h == "up" for h in health.values())
        # two scrapes after the traffic, so rate() has two points for every series
        if ready and _query(prom, "min(count_over_time(up[1m]))") and \
                float(_query(prom, "min(count_over_time(up[1m]))")[0]["value"][1]) >= 3:
            break
        assert time.monotonic() < deadline, f"targets not all up: {health}"
        time.sleep(2)

    exposed: set[str] = set()
    for job, port in observed_stack.scrape_ports().items():
        exposed |= metric_families(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
    known_everywhere = exposed | {"up"}
    checked = 0
    for title, expr in panel_queries():
        words = {w for w in PROMQL_WORDS.findall(re.sub(r'"[^"]*"', "", expr))}
        missing = {w for w in words if re.fullmatch(r"(movierec|http|feedback|celery|features)_[a-z_]+", w)
                   and not referenced_families(w, known_everywhere)}
        if missing:
            # metrics of services this run did not start: the full stack test checks those
            assert observed_stack.options.services is not None, f"{title}: {missing} exposed by no service"
            continue
        assert _query(prom, expr), f"{title}: no data for {expr}"
        checked += 1
    assert checked >= 6
