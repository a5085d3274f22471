"""``wrk`` as the load generator: POST bodies from a Lua script, percentiles from its ``done``
hook, and the CPU it used (so a reader can see it was not the bottleneck).

Bodies are made in Lua, per request:
- ``fixed``: cycles through a list of JSON bodies (the same requests again: cache hits);
- ``unique``: a known user's request with one never-seen movie id excluded, so every request
  differs and misses the cache while doing the full work of a real miss.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

MARKER = "WRKJSON "

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('%s{"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f}\n', "MARKER", summary.requests, summary.duration, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
""".replace("MARKER", MARKER)

_SETUP = r"""
local thread_count = 0
setup = function(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
end
counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
"""


def _lua_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fixed_bodies_script(bodies: list[dict]) -> str:
    """Each request takes the next of ``bodies`` (per connection thread, round robin)."""
    items = ", ".join(_lua_string(json.dumps(b, separators=(",", ":"))) for b in bodies)
    return _SETUP + f"""
bodies = {{ {items} }}
request = function()
  counter = counter + 1
  return wrk.format(nil, wrk.path, nil, bodies[(counter % #bodies) + 1])
end
""" + _DONE


def unique_miss_script(user_ids: list[int], k: int, first_unused_movie_id: int) -> str:
    """Known users in turn, each request excluding a different movie id that no catalog has."""
    users = ", ".join(str(int(u)) for u in user_ids)
    return _SETUP + f"""
users = {{ {users} }}
request = function()
  counter = counter + 1
  local user = users[((counter + (tid or 0) * 7919) % #users) + 1]
  local never = {int(first_unused_movie_id)} + (tid or 0) * 4000000 + counter
  return wrk.format(nil, wrk.path, nil, string.format('{{"user_id":%d,"k":{int(k)},"exclude_movie_ids":[%d]}}', user, never))
end
""" + _DONE


@dataclass(frozen=True)
class WrkResult:
    target: str
    connections: int
    threads: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int
    """Connect/read/write errors, timeouts and non-2xx/3xx answers together."""
    status_errors: int
    wrk_cpu_s: float
    wrk_cpu_share: float
    """wrk's CPU seconds over (wall seconds x CPU cores): its share of the whole machine."""

    def as_dict(self) -> dict:
        return asdict(self)


class WrkError(RuntimeError):
    pass


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def run_wrk(url: str, script: str, *, target: str, connections: int, duration_s: float, threads: int = 2,
            timeout_s: float = 10.0) -> WrkResult:
    """One ``wrk`` run against ``url`` (loopback only), bounded by ``duration_s`` plus a margin."""
    binary = wrk_binary()
    if binary is None:
        raise WrkError("wrk is not installed (Debian: apt-get install wrk; `make sysdeps` installs it)")
    if not url.startswith(("http://127.0.0.1", "http://localhost")):
        raise WrkError(f"the benchmark only loads loopback addresses, not {url}")
    threads = max(1, min(threads, connections))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        script_path = Path(f.name)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [binary, "-t", str(threads), "-c", str(connections), "-d", f"{duration_s:g}s", "--timeout", f"{timeout_s:g}s",
             "-s", str(script_path), url],
            capture_output=True, text=True, timeout=duration_s + timeout_s + 30,
        )
    except subprocess.TimeoutExpired as exc:
        raise WrkError(f"wrk did not finish within {duration_s + timeout_s + 30:.0f} s") from exc
    finally:
        script_path.unlink(missing_ok=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = next((l for l in proc.stdout.splitlines() if l.startswith(MARKER)), None)
    if proc.returncode != 0 or line is None:
        raise WrkError(f"wrk failed (code {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}")
    raw = json.loads(line[len(MARKER):])
    seconds = raw["duration_us"] / 1e6
    errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["status_errors"] + raw["timeouts"]
    return WrkResult(
        target=target, connections=connections, threads=threads, duration_s=round(seconds, 2), requests=raw["requests"],
        rps=round(raw["requests"] / seconds, 1) if seconds else 0.0,
        p50_ms=raw["p50_us"] / 1e3, p95_ms=raw["p95_us"] / 1e3, p99_ms=raw["p99_us"] / 1e3, max_ms=raw["max_us"] / 1e3,
        mean_ms=round(raw["mean_us"] / 1e3, 3), errors=errors, status_errors=raw["status_errors"],
        wrk_cpu_s=round(cpu, 2), wrk_cpu_share=round(cpu / (wall * (os.cpu_count() or 1)), 3),
    )
