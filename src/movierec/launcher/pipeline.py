"""The offline steps ``movierec up`` runs first when their output is missing.

Each step is a ``movierec`` CLI command run as a subprocess (its own progress bars show), and
each skips itself when its output is already there; the commands themselves resume. A command
that this install does not have is skipped with a message, not an error.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from movierec.settings import Settings


@dataclass(frozen=True)
class PipelineStep:
    name: str
    args: tuple[str, ...]
    output: Callable[[Settings], Path]
    """Where the step's result lives; the step runs when this is missing or empty."""

    def done(self, settings: Settings) -> bool:
        path = self.output(settings)
        return path.is_file() or (path.is_dir() and any(path.iterdir()))


PIPELINE: tuple[PipelineStep, ...] = (
    PipelineStep("data splits", ("data", "splits"), lambda s: s.splits_dir),
    PipelineStep("item features", ("features", "build"), lambda s: s.features_dir),
    PipelineStep("fusion model", ("model", "train"), lambda s: s.models_dir / "fusion" / "current"),
    PipelineStep("RL policy", ("rl", "train"), lambda s: s.models_dir / "policy" / "current"),
)


def movierec_command() -> list[str]:
    """The ``movierec`` CLI of this interpreter's environment."""
    script = Path(sys.executable).parent / "movierec"
    if script.exists():
        return [str(script)]
    found = shutil.which("movierec")
    return [found] if found else [sys.executable, "-c", "from movierec.cli import main; main()"]


def command_exists(args: tuple[str, ...]) -> bool:
    result = subprocess.run([*movierec_command(), *args, "--help"], capture_output=True, text=True)
    return result.returncode == 0


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
