"""Where the time goes: ``py-spy record`` on a running service, its stacks sorted into buckets.

A sample is put in the bucket of the innermost frame that matches a rule (so time inside
``json.dumps`` called from httpx counts as JSON, not HTTP). Samples with the event loop or a
thread waiting on I/O are counted apart as idle, and the shares are of busy samples.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

IDLE = "idle (waiting for I/O)"
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (IDLE, ("selectors.py", "threading.py", "time.sleep")),
    ("JSON and validation (pydantic, json)", ("json/", "json (", "pydantic", "model_dump", "model_validate", "jsonable_encoder",
                                             "serialize_response", "_prepare_response_content", "orjson", "fastapi/encoders")),
    ("filters and explanations", ("ItemIndex.nearest", "serving/filters.py", "serving/explanations.py", "serving/catalog.py", "serving/popularity.py")),
    ("model (torch, ranker top-N)", ("torch/", "item_index.py", "serving/ranker.py", "models/")),
    ("database (SQLAlchemy, psycopg)", ("sqlalchemy", "psycopg", "storage/")),
    ("Redis", ("redis/",)),
    ("imports at request time (importlib)", ("importlib",)),
    ("HTTP client hops (httpx)", ("httpx/", "httpcore/", "clients/")),
    ("HTTP server (uvicorn, httptools, starlette, fastapi)", ("uvicorn/", "starlette/", "h11/", "httptools/", "fastapi/", "anyio/")),
    ("logging and metrics", ("logging/", "prometheus_client", "movierec_service/")),
    ("asyncio machinery", ("asyncio/",)),
)


@dataclass(frozen=True)
class Profile:
    service: str
    samples: int
    idle_share: float
    busy_shares: dict[str, float]
    """Bucket -> share of busy samples, largest first."""
    hot_spots: dict[str, float]
    """Our innermost function (movierec code) -> share of busy samples, the five largest."""


def py_spy_binary() -> str | None:
    import sys

    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start_recording(pid: int, duration_s: float, output: Path, rate: int = 250) -> subprocess.Popen | None:
    """Start ``py-spy record`` on ``pid`` (and its subprocesses) in the background; None without py-spy."""
    binary = py_spy_binary()
    if binary is None:
        return None
    output.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [binary, "record", "--pid", str(pid), "--subprocesses", "--duration", str(max(1, int(duration_s))), "--rate", str(rate),
         "--format", "raw", "--nonblocking", "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def bucket_of(stack: str) -> str:
    frames = stack.split(";")
    idle_needles = BUCKETS[0][1]
    if frames and any(n in frames[-1] for n in idle_needles):  # the thread is parked, not working
        return IDLE
    for frame in reversed(frames):  # innermost first
        for name, needles in BUCKETS[1:]:
            if any(n in frame for n in needles):
                return name
    return "other Python"


def summarise(service: str, collapsed: Path) -> Profile | None:
    """Bucket shares from py-spy's raw (collapsed stack) output; None when it holds no samples."""
    counts: Counter[str] = Counter()
    spots: Counter[str] = Counter()
    try:
        lines = collapsed.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            bucket = bucket_of(stack)
            counts[bucket] += int(n)
            if bucket != IDLE:
                spots[our_innermost(stack)] += int(n)
    total = sum(counts.values())
    if not total:
        return None
    busy = total - counts[IDLE]
    shares = {k: round(v / busy, 3) for k, v in counts.most_common() if k != IDLE} if busy else {}
    hot = {k: round(v / busy, 3) for k, v in spots.most_common(5)} if busy else {}
    return Profile(service=service, samples=total, idle_share=round(counts[IDLE] / total, 3), busy_shares=shares, hot_spots=hot)


def our_innermost(stack: str) -> str:
    """The innermost frame of movierec code (services included, shared plumbing excluded)."""
    for frame in reversed(stack.split(";")):
        name, _, where = frame.partition(" (")
        if where.startswith("movierec") and not where.startswith("movierec_service"):
            return f"{name} ({where.split(':')[0]})"
    return "outside movierec code (server, event loop, middleware)"
