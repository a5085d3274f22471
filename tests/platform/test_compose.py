"""docker-compose.yml against the Compose specification and against the launcher's definitions.

No Docker engine runs here, so the file is checked statically: it must be valid Compose, and
every service must run the launcher's command with the launcher's environment.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from movierec.launcher import prometheus
from movierec.launcher.services import ADDRESS_ENV, CELERY_PROCESSES, SERVICES, stack_environment
from movierec.settings import REPO_ROOT

COMPOSE = REPO_ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _check_jsonschema() -> str:
    exe = Path(sys.executable).parent / "check-jsonschema"
    return str(exe) if exe.exists() else shutil.which("check-jsonschema")


@pytest.mark.parametrize("path", ["docker-compose.yml", "infra/compose.observability.yml"])
def test_compose_files_follow_the_compose_specification(path: str):
    result = subprocess.run([_check_jsonschema(), "--builtin-schema", "vendor.compose-spec", str(REPO_ROOT / path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_runs_the_launchers_command_with_its_environment(compose: dict):
    addresses = {name: f"http://{name}:{next(s.port for s in SERVICES if s.name == name)}" for name in ADDRESS_ENV}
    for spec in SERVICES:
        svc = compose["services"][spec.name]
        assert svc["command"] == spec.command(), spec.name
        env = svc["environment"]
        expected = stack_environment(addresses, env["MOVIEREC_DATABASE_URL"], env["MOVIEREC_REDIS_URL"])
        assert {k: env[k] for k in expected} == expected, spec.name
        assert env["MOVIEREC_DATABASE_URL"].startswith("${MOVIEREC_DATABASE_URL:-postgresql+psycopg://")
        assert env["MOVIEREC_REDIS_URL"] == "${MOVIEREC_REDIS_URL:-redis://redis:6379/0}"
    for proc in CELERY_PROCESSES:
        svc = compose["services"][proc.name]
        assert svc["command"] == proc.command(), proc.name
        assert proc.extra_env.items() <= svc["environment"].items(), proc.name


def test_only_the_gateway_publishes_a_port(compose: dict):
    published = sorted(name for name, svc in compose["services"].items() if svc.get("ports"))
    assert published == ["gateway"]
    assert compose["services"]["gateway"]["ports"] == [f"{SERVICES[0].port}:{SERVICES[0].port}"]


def test_health_checks_gate_start_up(compose: dict):
    services = compose["services"]
    for spec in SERVICES:
        assert f"127.0.0.1:{spec.port}/readyz" in " ".join(services[spec.name]["healthcheck"]["test"]), spec.name
    for name, svc in services.items():
        for dep, rule in svc.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dep == "pipeline" else "service_healthy"
            assert rule["condition"] == expected, f"{name} -> {dep}"
            if expected == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits on {dep}, which has no health check"
    assert set(services["gateway"]["depends_on"]) >= {s.name for s in SERVICES if s.name != "gateway"}


def test_ranker_reserves_a_gpu_and_scalable_parts_have_no_fixed_names(compose: dict):
    devices = compose["services"]["ranker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    scalable = [s.name for s in SERVICES if s.scalable] + [p.name for p in CELERY_PROCESSES if p.scalable]
    assert set(scalable) >= {"ranker", "worker"}
    for name in scalable:
        assert "container_name" not in compose["services"][name]


def test_servers_and_observability_are_there(compose: dict):
    assert {"postgres", "redis", "prometheus", "grafana", "worker", "beat"} <= set(compose["services"])
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./infra/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


def test_prometheus_config_is_generated_from_the_service_list():
    on_disk = yaml.safe_load(prometheus.COMPOSE_CONFIG.read_text())
    assert on_disk == prometheus.render(), "regenerate with: python -m movierec.launcher.prometheus"
    jobs = {job["job_name"] for job in on_disk["scrape_configs"]}
    assert jobs == {s.name for s in SERVICES} | {"worker"}
