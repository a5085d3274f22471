"""The offline steps ``movierec up`` runs first when their output is missing.

Each step is a ``movierec`` CLI command run as a subprocess (its own progress bars show), and
each skips itself when its output is already there; the commands themselves resume. A command
that this install does not have is skipped with a message, not an error.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from movierec.settings import Settings


@dataclass(frozen=True)
class PipelineStep:
    name: str
    args: tuple[str, ...]
    output: Callable[[Settings], Path]
    """Where the step's result lives; the step runs when this is missing or empty."""
    complete: Callable[[Path], bool] | None = None
    """A stricter check of the output than "there and not empty"."""

    def done(self, settings: Settings) -> bool:
        path = self.output(settings)
        there = path.is_file() or (path.is_dir() and any(path.iterdir()))
        return there and (self.complete is None or self.complete(path))


def _every_modality_built(report: Path) -> bool:
    """The feature build's report lists every modality (an interrupted build does not)."""
    from movierec.features.store import MODALITIES

    try:
        built = json.loads(report.read_text()).get("modalities", {})
    except (OSError, json.JSONDecodeError):
        return False
    return all(m in built for m in MODALITIES)


def _policy_fits_the_ranker(current: Path) -> bool:
    """The published policy was trained on vectors as wide as the fusion model serves now; a fusion
    model retrained at another width needs a new policy. Files that cannot be read count as
    fitting: the policy service reports those itself."""
    models = current.parent.parent
    try:
        with np.load(models / "policy" / current.read_text().strip() / "tables.npz") as z:
            policy_width = z["item_vectors"].shape[1]
        with np.load(models / "fusion" / "current" / "artifact.npz") as z:
            ranker_width = z["item_vectors"].shape[1]
    except (OSError, KeyError, ValueError):
        return True
    return policy_width == ranker_width


PIPELINE: tuple[PipelineStep, ...] = (
    PipelineStep("data splits", ("data", "splits"), lambda s: s.splits_dir),
    PipelineStep("item features", ("features", "build"), lambda s: s.features_dir / "build_report.json", _every_modality_built),
    PipelineStep("fusion model", ("model", "train"), lambda s: s.models_dir / "fusion" / "current"),
    PipelineStep("RL policy", ("rl", "train"), lambda s: s.models_dir / "policy" / "current", _policy_fits_the_ranker),
)


def movierec_command() -> list[str]:
    """The ``movierec`` CLI of this interpreter's environment."""
    script = Path(sys.executable).parent / "movierec"
    if script.exists():
        return [str(script)]
    found = shutil.which("movierec")
    return [found] if found else [sys.executable, "-c", "from movierec.cli import main; main()"]


def command_exists(args: tuple[str, ...]) -> bool:
    """Whether this install's ``movierec`` CLI has the command ``args`` (looked up, not run)."""
    import typer

    from movierec.cli import app

    command = typer.main.get_command(app)
    for name in args:
        command = getattr(command, "commands", {}).get(name)  # groups hold their subcommands by name
        if command is None:
            return False
    return True


def run_pipeline(settings: Settings, say: Callable[[str], None], env: dict[str, str] | None = None) -> list[str]:
    """Run every missing step in order; returns the names of steps skipped for lack of a command.

    Raises ``subprocess.CalledProcessError`` when a step fails.
    """
    skipped = []
    for step in PIPELINE:
        if step.done(settings):
            say(f"{step.name}: already there ({step.output(settings)})")
            continue
        if not command_exists(step.args):
            say(f"{step.name}: skipped, this install has no `movierec {' '.join(step.args)}` command")
            skipped.append(step.name)
            continue
        say(f"{step.name}: running `movierec {' '.join(step.args)}`")
        subprocess.run([*movierec_command(), *step.args], check=True, env=env)
    return skipped
