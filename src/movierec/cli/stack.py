"""``movierec up``: the whole system on this machine, stopped cleanly by Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time

import typer
from rich.console import Console

from movierec.launcher.pipeline import run_pipeline
from movierec.launcher.servers import ServerStartError
from movierec.launcher.services import SERVICES
from movierec.launcher.stack import LocalStack, StackOptions
from movierec.launcher.supervisor import StackError
from movierec.settings import get_settings

console = Console()
_err = Console(stderr=True)


def _fail(message: str) -> None:
    _err.print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)


def _interrupt_on_signal(signum, frame):
    raise KeyboardInterrupt


def up(
    pipeline: bool = typer.Option(True, help="First run the missing data, features, model and policy steps."),
    pipeline_only: bool = typer.Option(False, help="Run the missing pipeline steps, then exit (compose's one-shot service)."),
    only: list[str] = typer.Option(None, "--only", help=f"Start only these services ({', '.join(s.name for s in SERVICES)})."),
    celery: bool = typer.Option(True, help="Start the Celery worker and beat."),
    host: str = typer.Option("127.0.0.1", help="Address the services listen on."),
    port_offset: int = typer.Option(0, min=0, max=50000, help="Added to every port (gateway 8000, ranker 8001, ...)."),
    database_url: str = typer.Option(None, envvar="MOVIEREC_DATABASE_URL", help="PostgreSQL URL; default: an embedded server."),
    redis_url: str = typer.Option(None, envvar="MOVIEREC_REDIS_URL", help="Redis URL; default: an embedded server."),
    prometheus: bool = typer.Option(None, help="Start Prometheus (default: when it is installed)."),
    ready_timeout: float = typer.Option(300.0, min=1.0, help="Seconds to wait for every service to be ready."),
    scale: list[str] = typer.Option(None, "--scale", help="NAME=N replicas of a scalable service (ranker), like docker compose."),
) -> None:
    """Start every service, the Celery worker and beat (and what is missing before them)."""
    if pipeline_only:
        try:
            run_pipeline(get_settings(), lambda m: console.print(m, highlight=False))
        except subprocess.CalledProcessError as exc:
            _fail(f"pipeline step `{' '.join(map(str, exc.cmd[1:]))}` failed with code {exc.returncode}")
        return
    known = {s.name for s in SERVICES}
    unknown = [n for n in (only or []) if n not in known]
    if unknown:
        _fail(f"--only: unknown service {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    replicas: dict[str, int] = {}
    for item in scale or []:
        name, _, count = item.partition("=")
        spec = next((s for s in SERVICES if s.name == name), None)
        if spec is None or not spec.scalable or not count.isdigit() or int(count) < 1:
            _fail(f"--scale {item}: expected NAME=N with N >= 1 and NAME one of: {', '.join(s.name for s in SERVICES if s.scalable)}")
        replicas[name] = int(count)
    options = StackOptions(host=host, port_offset=port_offset, services=tuple(only) if only else None, celery=celery,
                           pipeline=pipeline, database_url=database_url, redis_url=redis_url, prometheus=prometheus,
                           ready_timeout_s=ready_timeout, replicas=replicas)
    stack = LocalStack(get_settings(), options, say=lambda m: console.print(m, highlight=False))
    # explicit handlers: a launcher started in the background inherits an ignored SIGINT
    signal.signal(signal.SIGTERM, _interrupt_on_signal)
    signal.signal(signal.SIGINT, _interrupt_on_signal)
    try:
        stack.start()
        console.print("[bold green]movierec is up[/bold green]")
        for label, address in stack.addresses():
            console.print(f"  {label:22s} {address}", highlight=False)
        console.print("Ctrl-C stops everything.")
        while True:
            for child in stack.supervisor.exited():
                console.print(f"[yellow]{child.name} exited with code {child.proc.returncode}; see {child.log_path}[/yellow]")
                stack.supervisor.children.remove(child)
            time.sleep(1.0)
    except KeyboardInterrupt:
        console.print("stopping ...")
    except (StackError, ServerStartError, FileNotFoundError) as exc:
        _fail(str(exc))
    except subprocess.CalledProcessError as exc:
        _fail(f"pipeline step `{' '.join(map(str, exc.cmd[1:]))}` failed with code {exc.returncode}")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
    console.print("stopped")
