"""``movierec reliability``: rerun every fault, bad-input, fuzzing and access test against a real
local stack and write ``reports/reliability.md`` and ``.json``; issue user credentials."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import typer
from rich.console import Console
from tqdm import tqdm

from movierec.settings import REPO_ROOT, get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Fault injection, bad input, access control.")
console = Console()
_err = Console(stderr=True)


def _fail(message: str) -> None:
    _err.print(f"[red]error:[/red] {message}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)


FAULT_STEPS = {
    # --only name: (name prefix in the report, what runs it)
    "duplicates": ("duplicate and out-of-order events", lambda faults, stack, rate: [faults.duplicates_and_out_of_order(stack)]),
    "policy": ("policy killed", lambda faults, stack, rate: [faults.policy_killed(stack, rate_per_s=rate)]),
    "ranker": ("ranker killed", lambda faults, stack, rate: [faults.ranker_killed(stack, rate_per_s=rate)]),
    "redis": ("Redis restarted", lambda faults, stack, rate: [faults.redis_restarted(stack, rate_per_s=rate)]),
    "postgres": ("PostgreSQL restarted", lambda faults, stack, rate: [faults.postgres_restarted(stack, rate_per_s=rate * 1.5)]),
    "retraining": ("worker killed while retraining", lambda faults, stack, rate: [
        faults.worker_killed_while_retraining(stack, kill) for kill in faults.RETRAINING_KILLS]),
}
"""Every fault, in the order a full run takes them (the servers' restarts late, retraining once at the end)."""
REPEATED = ("duplicates", "policy", "ranker", "redis", "postgres")


@app.command()
def run(
    out: Path = typer.Option(REPO_ROOT / "reports", help="Folder for reliability.md and reliability.json."),
    home: Path = typer.Option(None, help="Where the test stack keeps its servers, logs and model (default <home>/reliability)."),
    fuzz_examples: int = typer.Option(15, min=1, max=500, help="Generated requests per API operation."),
    rate: float = typer.Option(10.0, min=0.5, max=200.0, help="Steady load during each fault, requests per second."),
    body_timeout: float = typer.Option(5.0, min=1.0, max=60.0, help="Body timeout the stack runs with (slow-client case)."),
    repeat: int = typer.Option(1, min=1, max=10, help="Run every fault this many times (the report gives mean and spread)."),
    only: list[str] = typer.Option(None, help=f"Run only these faults ({', '.join(FAULT_STEPS)}) and merge them into the "
                                              "report already in --out, replacing their earlier results (no fuzzing, bad input, access)."),
) -> None:
    """Start the stack on embedded PostgreSQL/Redis, inject every fault under load, fuzz every
    service, try every bad input and refused credential, and write the report."""
    from movierec.launcher.servers import ServerStartError
    from movierec.launcher.supervisor import StackError
    from movierec.reliability import faults
    from movierec.reliability.access_probe import compose_publishes_only_the_gateway, run_access_probes
    from movierec.reliability.bad_input import run_bad_input
    from movierec.reliability.fuzz import fuzz_service
    from movierec.reliability.report import ReliabilityReport
    from movierec.launcher.ports import free_port_offset
    from movierec.reliability.stack import FaultStack

    unknown = sorted(set(only or ()) - set(FAULT_STEPS))
    if unknown:
        _fail(f"unknown fault(s) for --only: {', '.join(unknown)}; known: {', '.join(FAULT_STEPS)}")
    if only and not (out / "reliability.json").exists():
        _fail(f"--only merges into an existing report, and {out / 'reliability.json'} is missing: run without --only first")
    home = home or get_settings().home / "reliability"
    for stale in ("servers", "logs", "run"):  # fresh servers each run; the trained model is kept
        shutil.rmtree(home / stale, ignore_errors=True)
    command = f"movierec reliability run --rate {rate:g} --fuzz-examples {fuzz_examples} --repeat {repeat}"
    report = ReliabilityReport(command=command)
    stack = FaultStack(home, port_offset=free_port_offset(), say=lambda m: console.print(m, highlight=False),
                       extra_env={"MOVIEREC_BODY_TIMEOUT_S": str(body_timeout)})
    if only:
        command = f"movierec reliability run --rate {rate:g} --repeat {repeat} " + " ".join(f"--only {o}" for o in only)
    names = [name for name in FAULT_STEPS if not only or name in only]
    order = [name for _ in range(repeat) for name in names if name in REPEATED] + [name for name in names if name not in REPEATED]
    results = [] if only else report.faults
    steps = [] if only else [
        ("bad input", lambda: report.bad_input.extend(run_bad_input(stack, body_timeout))),
        ("access", lambda: report.access.extend(run_access_probes(stack.url("gateway"), stack.security_settings())
                                                + [compose_publishes_only_the_gateway(REPO_ROOT / "docker-compose.yml")])),
        ("fuzzing", lambda: _fuzz_all(stack, report, fuzz_service, fuzz_examples)),
    ]
    steps += [(name, lambda name=name: results.extend(FAULT_STEPS[name][1](faults, stack, rate))) for name in order]
    started = time.monotonic()
    try:
        with stack:
            console.print(f"stack up in {time.monotonic() - started:.0f} s; gateway at {stack.url('gateway')}")
            for name, step in tqdm(steps, desc="reliability", unit="test"):
                tqdm.write(f"- {name}")
                step()
    except (StackError, ServerStartError) as exc:
        _fail(str(exc).splitlines()[0])
    if only:
        report = ReliabilityReport.load(out)
        report.replace_faults(tuple(FAULT_STEPS[name][0] for name in only), results, command)
    md, js = report.write(out)
    broken = [f.name for f in report.faults if f.passed is False]
    broken += [c.name for c in report.bad_input + report.access if not c.passed]
    console.print(f"wrote {md} and {js} ({time.monotonic() - started:.0f} s)")
    if report.fuzz.server_errors:
        broken.append(f"fuzzing: {report.fuzz.server_errors} server errors")
    if broken:
        console.print(f"[yellow]{len(broken)} promise(s) broken:[/yellow] " + "; ".join(broken), highlight=False)
        raise typer.Exit(1)
    console.print("[green]every promise held[/green]")


def _fuzz_all(stack, report, fuzz_service, examples: int) -> None:
    for name in stack.stack.services:
        result = fuzz_service(stack.url(name.name), max_examples=examples)
        report.fuzz.per_service[name.name] = result.as_dict()
        report.fuzz.cases += result.cases
        report.fuzz.server_errors += result.server_errors
        report.fuzz.schema_mismatches += result.schema_mismatches
        report.fuzz.failures += [f"{name.name}: {f}" for f in result.failures]


@app.command()
def token(
    user_id: int = typer.Argument(..., min=1, help="The user the token acts for."),
    ttl: int = typer.Option(None, min=1, help="Seconds until it expires (default MOVIEREC_TOKEN_TTL_S)."),
    admin: bool = typer.Option(False, help="An admin token."),
) -> None:
    """Print a signed token for ``Authorization: Bearer ...`` (needs MOVIEREC_TOKEN_SECRET)."""
    from movierec.security import Authenticator, InsecureSettings, get_security_settings

    try:
        console.print(Authenticator(get_security_settings()).token_for(user_id, ttl_s=ttl, admin=admin), soft_wrap=True)
    except InsecureSettings as exc:
        _fail(str(exc))


@app.command("api-key")
def api_key(user_id: int = typer.Argument(..., min=1, help="The user the key belongs to.")) -> None:
    """Print the API key of a user for ``X-API-Key`` (derived from MOVIEREC_TOKEN_SECRET)."""
    from movierec.security import Authenticator, InsecureSettings, get_security_settings

    try:
        console.print(Authenticator(get_security_settings()).api_key_for(user_id), soft_wrap=True)
    except InsecureSettings as exc:
        _fail(str(exc))
