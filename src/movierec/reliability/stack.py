"""``FaultStack``: the real local stack (``movierec.launcher``) on embedded PostgreSQL and Redis
that this object owns, so it can kill and restart any process or server of it.

Never points at a shared server: restarting this machine's PostgreSQL or Redis would hit everyone
else. The ranker serves whatever fusion model is in ``<home>/models/fusion/current``; when there
is none, ``prepare_serving_model`` trains the small ID-only variant (``mf``) on ml-latest-small in
about 20 s, which is enough to exercise serving (quality is not under test here).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from movierec.launcher.servers import EmbeddedPostgres, EmbeddedRedis
from movierec.launcher.services import CELERY_PROCESSES, SERVICES
from movierec.launcher.stack import LocalStack, StackOptions
from movierec.launcher.supervisor import Child, StackError
from movierec.settings import Settings


def available_services() -> tuple[str, ...]:
    """Services whose package is installed with an app (a service still being written is left out)."""
    return tuple(s.name for s in SERVICES if importlib.util.find_spec(s.package) and importlib.util.find_spec(f"{s.package}.app"))


def prepare_serving_model(settings: Settings, say: Callable[[str], None] = print, epochs: int = 3) -> Path:
    """The fusion model folder the ranker will serve, trained (small, ID-only) when missing."""
    current = settings.models_dir / "fusion" / "current"
    if (current / "artifact.json").exists():
        return current
    import torch

    from movierec.data import load_dataset
    from movierec.models.checkpoint import save_trained
    from movierec.models.registry import get_model, train_model

    say(f"no fusion model in {current.parent}: training the small ID-only variant (mf, {epochs} epochs) for the fault tests")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    dataset = load_dataset(settings)
    spec = get_model("mf")
    cfg = spec.config({"epochs": epochs, "dim": 16, "rank_dim": 16})
    trained = train_model(spec, cfg, dataset.ratings, dataset.catalog.index.to_numpy(), {}, progress=False)
    save_trained(trained, current.parent, "reliability-v1", {"data_version": "ml-latest-small", "model": "mf", "purpose": "fault tests"})
    return current


@dataclass
class FaultStack:
    home: Path
    port_offset: int
    services: tuple[str, ...] | None = None
    celery: bool = True
    say: Callable[[str], None] = print
    extra_env: dict[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 240.0
    rate_limit_per_s: float = 30.0
    rate_limit_burst: int = 60
    """The gateway's per-client limit in this stack: above every steady load here, low enough for
    the access probe to reach it."""

    def __post_init__(self):
        self.settings = Settings(home=self.home)
        self.postgres = EmbeddedPostgres(self.home / "servers" / "postgres")
        self.redis = EmbeddedRedis(self.home / "servers" / "redis")
        self.database_url = ""
        self.redis_url = ""
        self.stack: LocalStack | None = None
        self._child_env: dict[str, dict[str, str]] = {}
        """Extra environment of processes this object started itself (a restart gets it again)."""

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> "FaultStack":
        prepare_serving_model(self.settings, self.say)
        self.database_url = self.postgres.start()
        self.redis_url = self.redis.start()
        options = StackOptions(
            port_offset=self.port_offset, services=self.services or available_services(), celery=self.celery, pipeline=False,
            database_url=self.database_url, redis_url=self.redis_url, prometheus=False, ready_timeout_s=self.ready_timeout_s,
            extra_env={"OMP_NUM_THREADS": "1", "MOVIEREC_RANKER_DEVICE": "cpu",
                       # retraining only when a drill asks for it: a timer or an event count would
                       # start runs no test controls (and move the served policy under other tests)
                       "MOVIEREC_RETRAIN_EVERY_S": "0", "MOVIEREC_RETRAIN_AFTER_EVENTS": "0",
                       # access control as outside development: writes and admin need credentials
                       "MOVIEREC_WRITE_ACCESS": "keyed", "MOVIEREC_ADMIN_API_KEY": secrets.token_urlsafe(32),
                       "MOVIEREC_RATE_LIMIT_PER_S": str(self.rate_limit_per_s), "MOVIEREC_RATE_LIMIT_BURST": str(self.rate_limit_burst),
                       **self.extra_env},
        )
        self.stack = LocalStack(self.settings, options, say=self.say)
        self.stack.start()
        return self

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
        self.redis.stop()
        self.postgres.stop()

    def __enter__(self) -> "FaultStack":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def security_settings(self):
        """The security settings this stack's services run with, as far as clients need them."""
        from movierec.security import get_security_settings

        return get_security_settings().model_copy(update={"rate_limit_per_s": self.rate_limit_per_s, "rate_limit_burst": self.rate_limit_burst})

    def url(self, name: str) -> str:
        return self.stack.url(name)

    def running(self, name: str) -> bool:
        return any(c.name == name and c.proc.poll() is None for c in self.stack.supervisor.children)

    # --- faults -----------------------------------------------------------------------------

    def _child(self, name: str) -> Child:
        for child in self.stack.supervisor.children:
            if child.name == name:
                return child
        raise KeyError(f"{name} is not running in this stack")

    def kill(self, name: str) -> Child:
        """SIGKILL a service or Celery process (no clean shutdown), as a crash would."""
        child = self._child(name)
        try:
            os.killpg(child.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.proc.wait(timeout=10)
        self.stack.supervisor.children.remove(child)
        return child

    def start_worker(self, name: str, queue: str, *, pool: str = "prefork", visibility_timeout_s: float | None = None,
                     timeout_s: float = 120.0) -> Child:
        """One more Celery worker of the stack's app, consuming only ``queue``, one task at a time,
        with its own broker visibility timeout; returns once it answers a ping.

        The stack's own worker runs a thread pool (no pool process can die alone there) and the
        production visibility timeout (600 s): a drill that kills a worker uses this one."""
        env = {"MOVIEREC_CELERY_VISIBILITY_TIMEOUT_S": f"{visibility_timeout_s:g}"} if visibility_timeout_s else {}
        self._child_env[name] = env
        argv = ["celery", "-A", "movierec.tasks.app", "worker", "--loglevel=INFO", f"--pool={pool}", "--concurrency=1",
                f"--queues={queue}", f"--hostname={name}@%h", "--without-mingle", "--without-gossip"]
        child = self.stack.supervisor.spawn(name, argv, extra_env=env)
        self.wait_worker(name, timeout_s)
        return child

    def wait_worker(self, name: str, timeout_s: float) -> float:
        """Wait until the Celery worker ``name`` answers a ping; returns the seconds it took."""
        from movierec.tasks.app import make_celery

        started = time.monotonic()
        app = make_celery(self.redis_url)
        destination = [f"{name}@{socket.gethostname()}"]
        while not app.control.ping(destination=destination, timeout=1.0):
            child = self._child(name)
            if child.proc.poll() is not None:
                raise StackError(f"worker {name} exited with code {child.proc.returncode}; its log: {child.log_path}")
            if time.monotonic() - started > timeout_s:
                raise StackError(f"worker {name} did not answer a ping within {timeout_s:.0f} s; its log: {child.log_path}")
        return time.monotonic() - started

    def terminate(self, name: str, timeout_s: float = 30.0) -> None:
        """Stop a process cleanly (SIGTERM: a Celery worker finishes its task first)."""
        child = self._child(name)
        try:
            os.killpg(child.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            child.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait(timeout=10)
        self.stack.supervisor.children.remove(child)
        self._child_env.pop(name, None)

    def restart(self, child: Child, wait_ready: bool = True) -> float:
        """Start a killed process again with the same command; returns seconds until it was ready."""
        started = time.monotonic()
        extra = dict(self._child_env.get(child.name, {}))
        for proc in CELERY_PROCESSES:
            if proc.name == child.name and proc.metrics_port:
                extra["MOVIEREC_WORKER_METRICS_PORT"] = str(self.stack.worker_metrics_port)
        self.stack.supervisor.spawn(child.name, child.argv, extra_env=extra, ready_url=child.ready_url)
        if wait_ready and child.ready_url:
            self.stack.supervisor.wait_ready(self.ready_timeout_s)
        return time.monotonic() - started

    def restart_postgres(self, down_s: float) -> None:
        """Stop the embedded PostgreSQL, keep it down ``down_s`` seconds, start it on the same data."""
        self.postgres.stop()
        time.sleep(down_s)
        url = self.postgres.start()
        if url != self.database_url:
            raise StackError(f"PostgreSQL came back at another address ({url}); the services still use {self.database_url}")

    def restart_redis(self, down_s: float) -> None:
        """Stop the embedded Redis (SIGTERM: it writes its append-only file), start it on the same port."""
        self.redis.stop()
        time.sleep(down_s)
        url = self.redis.start()
        if url != self.redis_url:
            raise StackError(f"Redis came back at another address ({url})")
