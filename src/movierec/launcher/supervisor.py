"""Child processes of the stack: start, wait until ready, watch, stop cleanly.

Each child runs in its own session (so a Ctrl-C in the terminal reaches only the launcher, which
then stops the children in reverse start order: SIGTERM, then SIGKILL after a grace period).
Output goes to one log file per process under ``<home>/logs``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx


class StackError(RuntimeError):
    """The stack could not start: a process exited or never became ready."""


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen
    ready_url: str | None = None


def python_module_argv(argv: list[str]) -> list[str]:
    """Run ``uvicorn ...``/``celery ...`` as ``python -m`` of this environment (same command, no PATH lookup)."""
    if argv and argv[0] in ("uvicorn", "celery"):
        return [sys.executable, "-m", *argv]
    return argv


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def exit_reason(path: Path) -> str:
    """The last line of a log that reports an error (else its last line), for a one-line message."""
    lines = [line.strip() for line in log_tail(path, 40).splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "exception" in line.lower()]
    return ((errors or lines or ["no output"])[-1])[:300]


@dataclass
class Supervisor:
    log_dir: Path
    env: dict[str, str]
    say: Callable[[str], None] = print
    children: list[Child] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], *, extra_env: dict[str, str] | None = None, ready_url: str | None = None) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log_file:
            proc = subprocess.Popen(
                python_module_argv(argv), env={**os.environ, **self.env, **(extra_env or {})},
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        child = Child(name, argv, log_path, proc, ready_url)
        self.children.append(child)
        return child

    def exited(self) -> list[Child]:
        return [c for c in self.children if c.proc.poll() is not None]

    def wait_ready(self, timeout_s: float) -> None:
        """Wait until every child with a ready URL answers 200; raise ``StackError`` on exit or timeout."""
        pending = {c.name: c for c in self.children if c.ready_url}
        last_problem: dict[str, str] = {}
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while pending:
                for child in self.exited():
                    raise StackError(f"{child.name} exited with code {child.proc.returncode} ({exit_reason(child.log_path)}); "
                                     f"its log: {child.log_path}")
                for name, child in list(pending.items()):
                    try:
                        response = client.get(child.ready_url)
                    except httpx.HTTPError as exc:
                        last_problem[name] = f"not answering ({type(exc).__name__})"
                        continue
                    if response.status_code == 200:
                        self.say(f"{name} ready")
                        del pending[name]
                    else:
                        last_problem[name] = response.text[:300]
                if pending and time.monotonic() > deadline:
                    details = "; ".join(f"{n}: {last_problem.get(n, '?')} (log {pending[n].log_path})" for n in pending)
                    raise StackError(f"not ready after {timeout_s:.0f} s: {details}")
                if pending:
                    time.sleep(0.5)

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM every child (newest first), then SIGKILL whatever is left after ``grace_s``."""
        for child in reversed(self.children):
            if child.proc.poll() is None:
                try:
                    os.killpg(child.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace_s
        for child in reversed(self.children):
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop within {grace_s:.0f} s; killing it")
                try:
                    os.killpg(child.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                child.proc.wait()
        self.children.clear()
