"""The measurement records the performance report is assembled from, kept beside it.

``movierec bench ranker`` (on a GPU, only where one is lent), ``movierec bench closed-loop``
(20 minutes with its control) and ``movierec rl fine-tune-study`` are not rerun by ``movierec
bench serving``; their last results are read from ``<reports-dir>/measurements/``. They live there, committed with the reports they
feed, not under ``<home>``: a new checkout would lose them, and the report with them.
"""

from __future__ import annotations

import json
from pathlib import Path

MEASUREMENTS = "measurements"


def ranker_record_path(reports_dir: Path, device: str) -> Path:
    return Path(reports_dir) / MEASUREMENTS / f"ranker_{device.replace(':', '_')}.json"


def scale_record_path(reports_dir: Path) -> Path:
    """The last ``movierec bench scale`` run."""
    return Path(reports_dir) / MEASUREMENTS / "scale.json"


def closed_loop_record_path(reports_dir: Path, retrain: bool, seed: int) -> Path:
    """The last closed-loop run of one seed (``retrain=False``: the control run)."""
    return Path(reports_dir) / MEASUREMENTS / f"closed_loop{'' if retrain else '_control'}_seed{seed}.json"


def closed_loop_pairs(reports_dir: Path) -> list[tuple[dict, dict | None]]:
    """Every saved learning run with the control run of its seed (None when there is none), by seed."""
    runs = [load_record(p) for p in (Path(reports_dir) / MEASUREMENTS).glob("closed_loop_seed*.json")]
    return [(run, load_record(closed_loop_record_path(reports_dir, False, run["seed"]))) for run in sorted(runs, key=lambda r: r["seed"])]


def fine_tune_study_record_path(reports_dir: Path, seed: int, temperature: float = 0.0) -> Path:
    """The last ``movierec rl fine-tune-study`` of one seed, served epsilon-greedy (temperature
    0) or with this softmax exploration temperature."""
    suffix = f"_t{temperature:g}" if temperature > 0 else ""
    return Path(reports_dir) / MEASUREMENTS / f"fine_tune_study_seed{seed}{suffix}.json"


def fine_tune_study_records(reports_dir: Path) -> list[dict]:
    """Every saved fine-tuning study, by serving exploration temperature, then seed."""
    found = [load_record(p) for p in (Path(reports_dir) / MEASUREMENTS).glob("fine_tune_study_seed*.json")]
    return sorted(found, key=lambda r: (r.get("serving_temperature", 0.0), r["seed"]))


def load_record(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def save_record(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
