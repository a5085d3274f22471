"""Run ``loadtests/locustfile.py`` headless and read its CSV: the API behind ``movierec bench
locust`` and the load smoke test."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from movierec.settings import REPO_ROOT

LOCUSTFILE = REPO_ROOT / "loadtests" / "locustfile.py"
AUDIENCE_LOAD_S = 300
"""Allowance for loading the simulated audience (fits the oracle once when it is not cached)."""


class LocustError(RuntimeError):
    pass


@dataclass(frozen=True)
class EndpointStats:
    name: str
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass
class LocustSummary:
    total: EndpointStats
    endpoints: list[EndpointStats] = field(default_factory=list)
    csv_prefix: Path | None = None
    html: Path | None = None

    def requests_to(self, prefix: str) -> int:
        return sum(e.requests for e in self.endpoints if e.name.startswith(prefix))


def _num(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return 0.0


def read_stats(stats_csv: Path) -> tuple[EndpointStats, list[EndpointStats]]:
    rows = list(csv.DictReader(stats_csv.open()))
    parsed = [EndpointStats(name=r["Name"] if r["Type"] else r["Name"], requests=int(_num(r["Request Count"])),
                            failures=int(_num(r["Failure Count"])), rps=round(_num(r["Requests/s"]), 2),
                            p50_ms=_num(r["50%"]), p95_ms=_num(r["95%"]), p99_ms=_num(r["99%"])) for r in rows]
    total = next((p for p, r in zip(parsed, rows) if r["Name"] == "Aggregated"), None)
    if total is None:
        raise LocustError(f"no Aggregated row in {stats_csv}")
    return total, [p for p in parsed if p.name != "Aggregated"]


def run_locust(host: str, out_dir: Path, *, users: int = 20, spawn_rate: float = 5.0, run_time_s: int = 60, seed: int = 0,
               processes: int = 1, env: dict[str, str] | None = None) -> LocustSummary:
    """Locust headless against ``host`` (loopback only) for ``run_time_s``; CSV and HTML under ``out_dir``."""
    if urlparse(host).hostname not in ("127.0.0.1", "localhost"):
        raise LocustError(f"load tests only run against loopback hosts, not {host}")
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix, html = out_dir / "locust", out_dir / "locust.html"
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host, "-u", str(users), "-r", f"{spawn_rate:g}",
            "-t", f"{run_time_s}s", "--csv", str(prefix), "--html", str(html), "--only-summary", "--stop-timeout", "5",
            "--exit-code-on-error", "0"]
    if processes > 1:
        argv += ["--processes", str(processes)]
    log = out_dir / "locust.log"
    with log.open("w") as log_file:
        try:
            proc = subprocess.run(argv, cwd=REPO_ROOT, env={**os.environ, "MOVIEREC_LOADTEST_SEED": str(seed), **(env or {})},
                                  stdout=log_file, stderr=subprocess.STDOUT, timeout=run_time_s + AUDIENCE_LOAD_S + 60)
        except subprocess.TimeoutExpired as exc:
            raise LocustError(f"locust did not finish in time; see {log}") from exc
    stats = Path(f"{prefix}_stats.csv")
    if proc.returncode != 0 or not stats.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise LocustError(f"locust exited with code {proc.returncode}; last lines of {log}:\n{tail}")
    total, endpoints = read_stats(stats)
    return LocustSummary(total=total, endpoints=endpoints, csv_prefix=prefix, html=html)
