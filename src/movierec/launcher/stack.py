"""``LocalStack``: everything ``movierec up`` starts, as one object tests can use too.

Order: servers (configured URLs, else embedded ones) -> migrations -> missing pipeline steps ->
services -> Celery worker and beat -> Prometheus (when installed) -> wait for every /readyz.
``stop`` undoes it in reverse.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from movierec.launcher import prometheus
from movierec.launcher.pipeline import run_pipeline
from movierec.launcher.servers import EmbeddedPostgres, EmbeddedRedis, servers_folder
from movierec.launcher.services import CELERY_PROCESSES, REPLICA_PORT_STEP, SERVICES, service, stack_environment
from movierec.launcher.supervisor import Supervisor
from movierec.settings import Settings
from movierec.storage import migrate

PROMETHEUS_PORT = 9090


@dataclass
class StackOptions:
    host: str = "127.0.0.1"
    port_offset: int = 0
    """Added to every port (gateway 8000+offset, ...), so several stacks can share a machine."""
    services: tuple[str, ...] | None = None
    """Only these services (default: all)."""
    celery: bool = True
    pipeline: bool = True
    database_url: str | None = None
    redis_url: str | None = None
    prometheus: bool | None = None
    """Start Prometheus; None: when the ``prometheus`` binary is installed."""
    ready_timeout_s: float = 300.0
    extra_env: dict[str, str] = field(default_factory=dict)
    replicas: dict[str, int] = field(default_factory=dict)
    """Replicas of scalable services, e.g. {"ranker": 2}; the gateway gets every replica's URL."""


@dataclass
class LocalStack:
    settings: Settings
    options: StackOptions = field(default_factory=StackOptions)
    say: Callable[[str], None] = print

    def __post_init__(self):
        self.run_dir = self.settings.home / "run"
        self.servers_dir = servers_folder(self.settings.home)
        self.supervisor = Supervisor(self.settings.home / "logs", {}, self.say)
        self._postgres: EmbeddedPostgres | None = None
        self._redis: EmbeddedRedis | None = None
        self.database_url = self.options.database_url or self.settings.database_url
        self.redis_url = self.options.redis_url or self.settings.redis_url
        names = self.options.services or tuple(s.name for s in SERVICES)
        self.services = [service(n) for n in names]
        for name, count in self.options.replicas.items():
            if not service(name).scalable or count < 1:
                raise ValueError(f"{name} cannot run as {count} replicas (scalable: "
                                 f"{', '.join(s.name for s in SERVICES if s.scalable)})")
        self.prometheus_url: str | None = None

    def port(self, name: str) -> int:
        return service(name).port + self.options.port_offset

    def url(self, name: str) -> str:
        """The address of ``name`` (of its first replica)."""
        return f"http://{self.options.host}:{self.port(name)}"

    def replica_ports(self, name: str) -> list[int]:
        return [self.port(name) + i * REPLICA_PORT_STEP for i in range(self.options.replicas.get(name, 1))]

    def replica_urls(self, name: str) -> list[str]:
        return [f"http://{self.options.host}:{p}" for p in self.replica_ports(name)]

    @property
    def worker_metrics_port(self) -> int:
        return next(p.metrics_port for p in CELERY_PROCESSES if p.name == "worker") + self.options.port_offset

    def start_servers(self) -> None:
        if not self.database_url:
            self.say(f"no MOVIEREC_DATABASE_URL: starting embedded PostgreSQL in {self.servers_dir / 'postgres'}")
            self._postgres = EmbeddedPostgres(self.servers_dir / "postgres")
            self.database_url = self._postgres.start()
        if not self.redis_url:
            self.say(f"no MOVIEREC_REDIS_URL: starting embedded Redis in {self.servers_dir / 'redis'}")
            self._redis = EmbeddedRedis(self.servers_dir / "redis")
            self.redis_url = self._redis.start()
        migrate(self.database_url)
        self.say("database migrated")

    def environment(self) -> dict[str, str]:
        addresses = {s.name: ",".join(self.replica_urls(s.name)) for s in SERVICES}
        return {
            **stack_environment(addresses, self.database_url, self.redis_url),
            "MOVIEREC_HOME": str(self.settings.home),
            **self.options.extra_env,
        }

    def start(self) -> "LocalStack":
        self.start_servers()
        env = self.environment()
        self.supervisor.env = env
        if self.options.pipeline:
            run_pipeline(self.settings, self.say, env={**os.environ, **env})
        for spec in self.services:
            for i, port in enumerate(self.replica_ports(spec.name)):
                name = spec.name if i == 0 else f"{spec.name}-{i + 1}"
                self.supervisor.spawn(name, spec.command(port, self.options.host),
                                      ready_url=f"http://{self.options.host}:{port}/readyz")
        if self.options.celery:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            for proc in CELERY_PROCESSES:
                extra = dict(proc.extra_env)
                if proc.metrics_port:
                    extra["MOVIEREC_WORKER_METRICS_PORT"] = str(self.worker_metrics_port)
                self.supervisor.spawn(proc.name, proc.command(str(self.run_dir / "celerybeat-schedule")), extra_env=extra)
        self._start_prometheus()
        self.supervisor.wait_ready(self.options.ready_timeout_s)
        return self

    def scrape_ports(self) -> dict[str, int]:
        ports = {s.name: self.port(s.name) for s in self.services}
        if self.options.celery:
            ports["worker"] = self.worker_metrics_port
        return ports

    def _start_prometheus(self) -> None:
        wanted = self.options.prometheus
        binary = prometheus.prometheus_binary()
        if wanted is False or (wanted is None and binary is None):
            return
        if binary is None:
            raise FileNotFoundError("prometheus is not installed (Debian: apt-get install prometheus)")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "prometheus.yml"
        targets: dict[str, int | list[int]] = {**self.scrape_ports(), **{s.name: self.replica_ports(s.name) for s in self.services}}
        config.write_text(prometheus.dump(prometheus.render(targets, self.options.host)))
        port = PROMETHEUS_PORT + self.options.port_offset
        self.prometheus_url = f"http://{self.options.host}:{port}"
        self.supervisor.spawn("prometheus", [
            binary, f"--config.file={config}", f"--storage.tsdb.path={self.servers_dir / 'prometheus'}",
            f"--web.listen-address={self.options.host}:{port}", "--storage.tsdb.retention.time=7d",
        ], ready_url=f"{self.prometheus_url}/-/ready")

    def stop(self) -> None:
        self.supervisor.stop()
        if self._redis is not None:
            self._redis.stop()
        if self._postgres is not None:
            self._postgres.stop()

    def __enter__(self) -> "LocalStack":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def addresses(self) -> list[tuple[str, str]]:
        """What to print for people once the stack is up."""
        lines = []
        if any(s.name == "gateway" for s in self.services):
            lines += [("web page", self.url("gateway") + "/"), ("API docs", self.url("gateway") + "/docs")]
        lines += [(f"{s.name} API", self.url(s.name) + "/docs") for s in self.services if s.name != "gateway"]
        lines.append(("Prometheus", self.prometheus_url or "not running (Debian: apt-get install prometheus)"))
        lines.append(("Grafana", "with docker compose: docker compose -f docker-compose.yml -f infra/compose.observability.yml up, then http://127.0.0.1:3000"))
        lines.append(("logs", str(self.supervisor.log_dir)))
        return lines
