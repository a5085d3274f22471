"""The ``movierec`` command. Each command group lives in its own module and is added here."""

from __future__ import annotations

import typer

from movierec.cli import data, features
from movierec.cli import stack
from movierec.cli import bench
from movierec.cli import model
from movierec.cli import rl
from movierec.cli import reliability

app = typer.Typer(no_args_is_help=True, add_completion=False, help="movierec: multimodal movie recommendation.")
app.add_typer(data.app, name="data")
app.add_typer(features.app, name="features")
app.add_typer(model.app, name="model")
app.command("up")(stack.up)
app.add_typer(bench.app, name="bench")
app.add_typer(rl.app, name="rl")
app.add_typer(reliability.app, name="reliability")


def main() -> None:
    app()
