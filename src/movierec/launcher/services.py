"""The one definition of what runs: services, ports, commands, environment.

The launcher starts these as local processes; ``docker-compose.yml`` runs the same commands with
the same environment variables (``tests/platform/test_compose.py`` holds the two together).
Services find each other through URLs in their environment, never through defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServiceSpec:
    """An HTTP service: a FastAPI app factory run by uvicorn."""

    name: str
    package: str
    port: int
    public: bool = False
    """Reachable from outside (only the gateway)."""
    gpu: bool = False
    """Gets a GPU when one is there (the ranker's item tensor)."""
    scalable: bool = False
    """Holds no state that cannot be rebuilt: may run as several replicas."""

    @property
    def factory(self) -> str:
        return f"{self.package}.app:create_app"

    def command(self, port: int | None = None, host: str = "0.0.0.0") -> list[str]:
        return ["uvicorn", self.factory, "--factory", "--host", host, "--port", str(port or self.port),
                "--no-access-log", "--timeout-graceful-shutdown", "5"]


@dataclass(frozen=True)
class ProcessSpec:
    """A Celery process (worker or beat)."""

    name: str
    args: tuple[str, ...]
    scalable: bool = False
    metrics_port: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    def command(self, beat_schedule: str = "/tmp/celerybeat-schedule") -> list[str]:
        return [arg.replace("{beat_schedule}", beat_schedule) for arg in self.args]


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("gateway", "movierec_gateway", 8000, public=True),
    ServiceSpec("ranker", "movierec_ranker", 8001, gpu=True, scalable=True),
    ServiceSpec("policy", "movierec_policy", 8002),
    ServiceSpec("feedback", "movierec_feedback", 8003),
    ServiceSpec("feature-extractor", "movierec_feature_extractor", 8004),
)

WORKER_METRICS_PORT = 9808

CELERY_PROCESSES: tuple[ProcessSpec, ...] = (
    ProcessSpec(
        "worker",
        ("celery", "-A", "movierec.tasks.app", "worker", "--loglevel=INFO", "--pool=threads", "--concurrency=2",
         "--hostname=worker@%h"),
        scalable=True, metrics_port=WORKER_METRICS_PORT,
        extra_env={"MOVIEREC_WORKER_METRICS_PORT": str(WORKER_METRICS_PORT)},
    ),
    ProcessSpec("beat", ("celery", "-A", "movierec.tasks.app", "beat", "--loglevel=INFO", "--schedule={beat_schedule}")),
)

REPLICA_PORT_STEP = 10
"""Replica i (from 0) of a scalable service listens on its port + i * REPLICA_PORT_STEP."""

ADDRESS_ENV: dict[str, str] = {
    "gateway": "MOVIEREC_GATEWAY_URL",
    "ranker": "MOVIEREC_GATEWAY_RANKER_URLS",
    "policy": "MOVIEREC_GATEWAY_POLICY_URL",
    "feedback": "MOVIEREC_GATEWAY_FEEDBACK_URL",
    "feature-extractor": "MOVIEREC_GATEWAY_FEATURES_URL",
}
"""The variable through which each service's address reaches the processes that call it."""


def service(name: str) -> ServiceSpec:
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown service {name!r}; known: {', '.join(s.name for s in SERVICES)}")


def stack_environment(addresses: dict[str, str], database_url: str, redis_url: str) -> dict[str, str]:
    """The environment every process of the stack gets: servers and each service's address."""
    missing = set(ADDRESS_ENV) - set(addresses)
    if missing:
        raise ValueError(f"no address for {', '.join(sorted(missing))}")
    env = {"MOVIEREC_DATABASE_URL": database_url, "MOVIEREC_REDIS_URL": redis_url}
    env.update({ADDRESS_ENV[name]: url for name, url in addresses.items()})
    return env
