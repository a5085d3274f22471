"""The serving benchmark: the bare reference endpoint and the stack under ``wrk``, in one run.

Order: the bare endpoint with 1 and 2 uvicorn workers -> the stack (launcher's Python API:
gateway, ranker, feedback, and the policy service when this install has one; no Celery, which
a recommendation request does not touch) -> cache-hit path -> cache-miss path -> each hop of a
miss alone (ranker top-N, the feedback service's user history) -> a py-spy profile of a miss run
-> memory of each service. Every run is against 127.0.0.1 and bounded in time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

from movierec.benchmarks.processes import cpu_seconds, rss_mb
from movierec.benchmarks.profiling import Profile, start_recording, summarise
from movierec.benchmarks.wrk_runner import WrkResult, fixed_bodies_script, run_wrk, unique_miss_script
from movierec.launcher.ports import free_port_offset
from movierec.launcher.servers import free_port
from movierec.launcher.stack import LocalStack, StackOptions
from movierec.launcher.supervisor import StackError
from movierec.settings import Settings

NEVER_A_MOVIE = 900_000_000
"""Excluded movie ids start here: no catalog has them, so each makes a distinct cache key."""
STACK_SERVICES = ("gateway", "ranker", "feedback")


class BenchmarkError(RuntimeError):
    """The benchmark could not run (a missing tool or model, a service that did not start)."""


@dataclass
class ServingBenchConfig:
    levels: tuple[int, ...] = (1, 8, 32, 128)
    duration_s: float = 15.0
    warmup_s: float = 3.0
    wrk_threads: int = 2
    k: int = 20
    hit_users: int = 50
    bare_workers: tuple[int, ...] = (1, 2)
    profile_s: float = 10.0
    """py-spy recording during a miss run at the headline concurrency (0: no profile)."""
    headline_connections: int = 32
    port_offset: int = 0
    """0: a free range is picked."""
    database_url: str | None = None
    redis_url: str | None = None
    model_dir: Path | None = None
    """The ranker's artifact folder; default ``<models_dir>/fusion/current``."""
    ready_timeout_s: float = 300.0


@dataclass
class ServingBenchResult:
    config: dict
    runs: list[WrkResult] = field(default_factory=list)
    memory_mb: dict[str, float] = field(default_factory=dict)
    server_cpu_share: dict[str, float] = field(default_factory=dict)
    """Per run (target@connections): CPU of the processes under test / (wall x cores)."""
    profiles: list[Profile] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    model_version: str | None = None
    policy_version: str | None = None
    catalog_items: int | None = None
    machine: dict = field(default_factory=dict)
    cleared_from_earlier_runs: dict[str, int] = field(default_factory=dict)
    """Cached lists and queued tasks of earlier runs removed from the stack's Redis before measuring."""
    gateway_counters: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per path: how the gateway's answers were made during its runs (cache hit/miss/error,
    source of the list, fallbacks), from its Prometheus counters."""

    def run(self, target: str, connections: int) -> WrkResult | None:
        return next((r for r in self.runs if r.target == target and r.connections == connections), None)


def _wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchmarkError(f"{url} exited with code {proc.returncode} before answering")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise BenchmarkError(f"{url} did not answer within {timeout_s:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def start_bare(workers: int, port: int, log_path: Path) -> subprocess.Popen:
    """The bare endpoint under uvicorn with ``workers`` processes (the launcher's uvicorn flags)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "movierec.benchmarks.bare_app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, 60)
    except BenchmarkError:
        _stop(proc)
        raise
    return proc


def _measure(result: ServingBenchResult, url: str, script: str | Callable[[int], str], target: str, pids: list[int],
             cfg: ServingBenchConfig, say: Callable[[str], None]) -> None:
    """Warm up, then one timed ``wrk`` run per concurrency level. ``script`` may be a function of
    the run number (0 is the warm-up), for bodies that must never repeat across runs."""
    script_for = script if callable(script) else (lambda _run: script)
    warm = run_wrk(url, script_for(0), target=target, connections=min(8, max(cfg.levels)), duration_s=cfg.warmup_s, threads=cfg.wrk_threads)
    _drain(warm)
    for run_no, connections in enumerate(cfg.levels, start=1):
        before = sum(cpu_seconds(p) for p in pids)
        started = time.monotonic()
        run = run_wrk(url, script_for(run_no), target=target, connections=connections, duration_s=cfg.duration_s, threads=cfg.wrk_threads)
        wall = time.monotonic() - started
        result.server_cpu_share[f"{target}@{connections}"] = round((sum(cpu_seconds(p) for p in pids) - before) / (wall * (os.cpu_count() or 1)), 3)
        result.runs.append(run)
        say(f"  {target:>14s} c={connections:<4d} {run.rps:8.1f} req/s  p50 {run.p50_ms:7.1f} ms  p95 {run.p95_ms:7.1f} ms  "
            f"p99 {run.p99_ms:7.1f} ms  errors {run.errors}  (wrk CPU {run.wrk_cpu_share:.0%})")
        if run.errors:
            say(f"  warning: {run.errors} failed requests in {target} at {connections} connections")
        _drain(run)


def _drain(run: WrkResult) -> None:
    """Let the server finish the requests wrk left in flight (it abandons up to one per
    connection), so they do not slow the next run down."""
    time.sleep(min(30.0, max(0.5, run.max_ms / 1000)))


def _miss_script(users: list[int], k: int, series: int) -> Callable[[int], str]:
    """A miss script per run whose excluded ids no other run of the benchmark uses."""
    return lambda run_no: unique_miss_script(users, k, NEVER_A_MOVIE + (series * 20 + run_no) * 40_000_000)


COUNTED = ("movierec_gateway_cache_requests_total", "movierec_gateway_recommendations_total", "movierec_gateway_fallbacks_total",
           "movierec_gateway_cache_errors_total")


def gateway_counters(gateway_url: str) -> dict[str, float]:
    """The gateway's answer counters (``name{labels}`` -> value) from its /metrics."""
    try:
        text = httpx.get(f"{gateway_url}/metrics", timeout=10).text
    except httpx.HTTPError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith(COUNTED) and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


def stack_services() -> tuple[str, ...]:
    has_policy = importlib.util.find_spec("movierec_policy") is not None and importlib.util.find_spec("movierec_policy.app") is not None
    return STACK_SERVICES + (("policy",) if has_policy else ())


def bench_stack_options(settings: Settings, cfg: ServingBenchConfig, services: tuple[str, ...]) -> StackOptions:
    """The stack as the benchmark (and the load tests) start it: no pipeline, no Celery, no
    Prometheus; short cache TTLs so the miss run's unique lists expire soon; a per-client rate
    limit too high to refuse the one load generator."""
    extra = {"MOVIEREC_GATEWAY_CACHE_TTL_S": "300", "MOVIEREC_GATEWAY_STALE_TTL_S": "300", "MOVIEREC_RANKER_RELOAD_INTERVAL_S": "0",
             "MOVIEREC_GATEWAY_LOG_LEVEL": "WARNING", "MOVIEREC_RANKER_LOG_LEVEL": "WARNING",
             # the load comes from one client (wrk, Locust on loopback): the per-client limiter still
             # runs on every request (its cost is measured) but never refuses one
             "MOVIEREC_RATE_LIMIT_PER_S": "1000000", "MOVIEREC_RATE_LIMIT_BURST": "1000000"}
    if cfg.model_dir is not None:
        extra["MOVIEREC_RANKER_ARTIFACT_DIR"] = str(cfg.model_dir)
    return StackOptions(
        host="127.0.0.1", port_offset=cfg.port_offset or free_port_offset(), services=services, celery=False, pipeline=False,
        database_url=cfg.database_url, redis_url=cfg.redis_url, prometheus=False, ready_timeout_s=cfg.ready_timeout_s, extra_env=extra,
    )


def clear_earlier_runs(redis_url: str) -> dict[str, int]:
    """Remove what earlier runs left in a benchmark's Redis, which is its own like its scratch
    database (the serving benchmark and the closed loop clear it before measuring): cached lists
    (an earlier run's policy chose them, and a hit serves them for up to the cache TTL) and
    queued Celery tasks (a control run queues retrainings and cache invalidations with no worker
    to run them; the next run's worker would start on that backlog). How many of each went."""
    import redis

    from movierec.storage.recs_cache_keys import ALL_LISTS, ALL_STALE_LISTS
    from movierec.tasks.app import make_celery
    from movierec.tasks.cache import delete_matching

    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        lists = delete_matching(client, ALL_LISTS) + delete_matching(client, ALL_STALE_LISTS)
    finally:
        client.close()
    return {"cached_lists": lists, "queued_tasks": int(make_celery(redis_url).control.purge() or 0)}


def cpu_model() -> str:
    """The CPU's model name and the vector instructions torch uses on it (runs on different hosts
    differ; a slower host is not a regression)."""
    import platform

    import torch

    name = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    return f"{name}, torch {torch.backends.cpu.get_cpu_capability()}"


def start_stack(settings: Settings, cfg: ServingBenchConfig, services: tuple[str, ...], say: Callable[[str], None],
                attempts: int = 3) -> LocalStack:
    """The benchmark's stack, started on a free port range; another range is tried when a port
    was taken between choosing it and binding it (other stacks may start on this machine)."""
    for attempt in range(1, attempts + 1):
        options = bench_stack_options(settings, cfg, services)
        say(f"starting the stack ({', '.join(services)}; port offset {options.port_offset}); this loads the catalog and the model")
        stack = LocalStack(settings, options, say=lambda m: say(f"  {m}"))
        try:
            return stack.start()
        except StackError as exc:
            stack.stop()
            if "address already in use" not in str(exc) or attempt == attempts:
                raise
            say("  a port was taken meanwhile; trying another range")
        except BaseException:
            stack.stop()
            raise
    raise AssertionError("unreachable")


def check_model(settings: Settings, model_dir: Path | None) -> Path:
    folder = Path(model_dir) if model_dir else settings.models_dir / "fusion" / "current"
    if not (folder / "artifact.json").exists():
        raise BenchmarkError(f"no serving artifact in {folder}: train one first (`movierec model train`, or `movierec up --pipeline-only`)"
                             " or pass --model-dir")
    return folder


def known_users(settings: Settings) -> list[int]:
    from movierec.data import load_dataset

    return sorted(int(u) for u in load_dataset(settings).ratings["user_id"].unique())


def run_serving_benchmark(settings: Settings, cfg: ServingBenchConfig, say: Callable[[str], None] = print) -> ServingBenchResult:
    check_model(settings, cfg.model_dir)
    result = ServingBenchResult(config={k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.__dict__.items()
                                        if k not in ("database_url", "redis_url")})
    result.machine = {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "python": sys.version.split()[0],
                      "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}
    users = known_users(settings)
    hit_bodies = [{"user_id": u, "k": cfg.k} for u in users[: cfg.hit_users]]
    logs = settings.home / "logs" / "bench"

    # 1. the bare endpoint
    for workers in cfg.bare_workers:
        port = free_port()
        say(f"bare endpoint, {workers} uvicorn worker{'s' if workers > 1 else ''} (port {port})")
        proc = start_bare(workers, port, logs / f"bare-{workers}.log")
        try:
            _measure(result, f"http://127.0.0.1:{port}/v1/recommendations", fixed_bodies_script(hit_bodies), f"bare-{workers}w",
                     [proc.pid], cfg, say)
            result.memory_mb[f"bare endpoint ({workers} worker{'s' if workers > 1 else ''})"] = rss_mb(proc.pid)
        finally:
            _stop(proc)

    # 2. the stack
    services = stack_services()
    stack = start_stack(settings, cfg, services, say)
    result.services = list(services)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(stack.stop)
        result.cleared_from_earlier_runs = cleared = clear_earlier_runs(stack.redis_url)
        say(f"  removed what earlier runs left in Redis: {cleared['cached_lists']} cached lists, {cleared['queued_tasks']} queued tasks")
        pids = {c.name: c.proc.pid for c in stack.supervisor.children}
        gateway = stack.url("gateway")
        rec_url = f"{gateway}/v1/recommendations"
        with httpx.Client(timeout=30) as client:
            for body in hit_bodies:  # fill the cache for the hit run (each is a miss now)
                response = client.post(rec_url, json=body)
                if response.status_code != 200:
                    raise BenchmarkError(f"warming the cache: POST {rec_url} {body} answered {response.status_code}: {response.text[:300]}")
            again = client.post(rec_url, json=hit_bodies[0]).json()
            if not again.get("cached"):
                raise BenchmarkError("the gateway did not answer from its cache on a repeated request; the hit path cannot be measured")
            result.model_version, result.policy_version = again.get("model_version"), again.get("policy_version")
            info = client.get(f"{stack.url('ranker')}/v1/info")
            result.catalog_items = info.json().get("items") if info.status_code == 200 else None
        say(f"cache-hit path (users {users[0]}..{users[cfg.hit_users - 1]}, already cached)")
        before = gateway_counters(gateway)
        _measure(result, rec_url, fixed_bodies_script(hit_bodies), "gateway-hit", [pids["gateway"]], cfg, say)
        after = gateway_counters(gateway)
        result.gateway_counters["gateway-hit"] = _delta(after, before)
        say(f"cache-miss path (every request a new cache key: ranker{' + policy' if 'policy' in services else ''} + feedback history, kept per user after their first miss)")
        miss_pids = [pids[s] for s in services]
        _measure(result, rec_url, _miss_script(users, cfg.k, 0), "gateway-miss", miss_pids, cfg, say)
        result.gateway_counters["gateway-miss"] = _delta(gateway_counters(gateway), after)

        # each hop of a miss alone, at the headline concurrency
        hop_cfg = ServingBenchConfig(**{**cfg.__dict__, "levels": (1, cfg.headline_connections)})
        say("hops of a miss, alone")
        ranker_bodies = [{"user_id": u, "k": 100} for u in users]
        _measure(result, f"{stack.url('ranker')}/v1/topn", fixed_bodies_script(ranker_bodies), "ranker-topn", [pids["ranker"]], hop_cfg, say)

        if cfg.profile_s > 0:
            say(f"profiling with py-spy for {cfg.profile_s:.0f} s on each path at c={cfg.headline_connections}")
            result.profiles = _profile("hit", {"gateway": pids["gateway"]}, rec_url, fixed_bodies_script(hit_bodies), cfg, logs)
            result.profiles += _profile("miss", {s: pids[s] for s in services}, rec_url, _miss_script(users, cfg.k, 1)(0), cfg, logs)
            if not result.profiles:
                say("  py-spy gave no samples (is ptrace allowed here?); the report has no profile")
        for name in services:
            result.memory_mb[name] = rss_mb(pids[name])
    return result


def _profile(path: str, pids: dict[str, int], url: str, script: str, cfg: ServingBenchConfig, logs: Path) -> list[Profile]:
    """py-spy on each of ``pids`` while ``wrk`` runs ``script``; one profile per service."""
    recorders = {name: start_recording(pid, cfg.profile_s, logs / f"profile-{path}-{name}.txt") for name, pid in pids.items()}
    if not any(recorders.values()):
        return []
    time.sleep(1.0)  # py-spy attaches
    run_wrk(url, script, target=f"profile-{path}", connections=cfg.headline_connections, duration_s=cfg.profile_s, threads=cfg.wrk_threads)
    profiles = []
    for name, proc in recorders.items():
        if proc is None:
            continue
        try:
            proc.wait(timeout=cfg.profile_s + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        profile = summarise(f"{name} ({path})", logs / f"profile-{path}-{name}.txt")
        if profile is not None:
            profiles.append(profile)
    return profiles
