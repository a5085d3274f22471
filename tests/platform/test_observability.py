"""Grafana provisioning is complete. Prometheus scraping the running stack, with every dashboard
panel's query returning data, is checked on the full stack in test_end_to_end.py
(``check_prometheus`` in conftest.py)."""

from __future__ import annotations

from movierec.settings import REPO_ROOT

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

