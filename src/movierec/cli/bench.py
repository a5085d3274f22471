"""``movierec bench``: the ranker's top-N cost as the catalog grows, and the serving benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from movierec.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Serving benchmarks: ranker top-N scaling, the stack under load.")
console = Console()
_err = Console(stderr=True)

RANKER_GOAL_MS = 50.0
"""Top-20 over 10^6 items on the CPU (issue 7)."""


def _fail(message: str) -> None:
    _err.print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)


def _parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(float(s)) for s in text.split(",") if s.strip())
    except ValueError:
        _fail(f"--sizes: expected comma-separated item counts such as 10000,100000,1000000, got {text!r}")
    if not sizes or any(n < 1 or n > 50_000_000 for n in sizes):
        _fail(f"--sizes: each item count must be between 1 and 50,000,000, got {text!r}")
    return sizes


def ranker_results_path(device: str) -> Path:
    return get_settings().home / "bench" / f"ranker_{device.replace(':', '_')}.json"


@app.command()
def ranker(
    sizes: str = typer.Option("10000,100000,1000000", help="Catalog sizes (synthetic items), comma-separated."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto (CUDA when available)."),
    dim: int = typer.Option(64, min=2, max=4096, help="Item vector dimension (the fusion model's default is 64)."),
    k: int = typer.Option(20, min=1, max=1000),
    repeats: int = typer.Option(50, min=1, max=10_000, help="Timed requests per size (after 5 warm-up requests)."),
    threads: int = typer.Option(0, min=0, max=256, help="torch CPU threads (0: torch's default)."),
    seed: int = typer.Option(0),
) -> None:
    """Top-k cost of the real ranker code over synthetic catalogs; prints a table and the goal."""
    import torch

    from movierec.benchmarks.ranker_scaling import run_scaling
    from movierec.serving.item_index import pick_device

    parsed = _parse_sizes(sizes)
    try:
        resolved = pick_device(device)
        torch.empty(1, device=resolved)
    except (RuntimeError, AssertionError) as exc:
        _fail(f"--device: {device!r} cannot be used here ({str(exc).splitlines()[0]})")
    if threads:
        torch.set_num_threads(threads)
    console.print(f"ranker top-{k} on {resolved} ({torch.get_num_threads()} CPU threads), dim {dim}, {repeats} requests per size")
    results = run_scaling(parsed, dim=dim, device=str(resolved), k=k, repeats=repeats, seed=seed,
                          progress=lambda r: console.print(f"  {r.items:>10,} items: filtered p50 {r.filtered_ms_p50:.2f} ms"))
    table = Table(title=f"top-{k} latency (ms) on {resolved}")
    for col in ("items", "plain p50", "plain mean", "filter mask p50", "filtered p50", "filtered p95", "filtered mean"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(f"{r.items:,}", f"{r.plain_ms_p50:.2f}", f"{r.plain_ms_mean:.2f}", f"{r.mask_ms_p50:.2f}",
                      f"{r.filtered_ms_p50:.2f}", f"{r.filtered_ms_p95:.2f}", f"{r.filtered_ms_mean:.2f}")
    console.print(table)
    million = next((r for r in results if r.items == 1_000_000), None)
    if million is not None and resolved.type == "cpu":
        ok = million.filtered_ms_p50 < RANKER_GOAL_MS
        console.print(f"goal: top-{k} over 10^6 items under {RANKER_GOAL_MS:.0f} ms on the CPU (filtered p50): "
                      f"{million.filtered_ms_p50:.1f} ms -> {'[green]PASS[/green]' if ok else '[red]FAIL[/red]'}")
    out = ranker_results_path(str(resolved))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": str(resolved), "threads": torch.get_num_threads(), "results": [r.as_dict() for r in results]}, indent=2))
    console.print(f"saved {out}")
