"""Results of a reliability run and the report files (``reports/reliability.md`` and ``.json``)."""

from __future__ import annotations

import json
import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from movierec.reliability.load import LoadSummary


@dataclass
class FaultResult:
    name: str
    fault: str
    load: str
    requests: int = 0
    errors_5xx: int = 0
    no_answer: int = 0
    degraded: int = 0
    acknowledged: int | None = None
    stored: int | None = None
    recovery_s: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    """What the fault promises, each checked: name -> held."""
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool | None:
        """Whether every promise held; None when the fault could not be run (see ``notes``)."""
        return all(self.checks.values()) if self.checks else None

    def count(self, summary: LoadSummary) -> "FaultResult":
        self.requests += summary.requests
        self.errors_5xx += summary.errors_5xx
        self.no_answer += summary.transport_errors
        self.degraded += summary.degraded
        for status, n in summary.statuses().items():
            self.statuses[status] = self.statuses.get(status, 0) + n
        errors = {label: n for label, n in summary.labels().items() if label[:1] == "5"}
        self.notes += [f"{n} x {label}" for label, n in errors.items()]
        return self


@dataclass
class CaseResult:
    """One hand-written bad input, or one access refusal."""

    name: str
    expected: str
    status: int | None
    passed: bool
    detail: str = ""


@dataclass
class FuzzResult:
    cases: int = 0
    server_errors: int = 0
    schema_mismatches: int = 0
    per_service: dict[str, dict] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@dataclass
class ReliabilityReport:
    faults: list[FaultResult] = field(default_factory=list)
    fuzz: FuzzResult = field(default_factory=FuzzResult)
    bad_input: list[CaseResult] = field(default_factory=list)
    access: list[CaseResult] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    command: str = "movierec reliability run"
    reruns: list[str] = field(default_factory=list)
    """Partial reruns merged in since (``movierec reliability run --only ...``): what and when."""

    @classmethod
    def load(cls, folder: Path) -> "ReliabilityReport":
        """The report written to ``folder`` before (its JSON), to merge a partial rerun into."""
        data = json.loads((folder / "reliability.json").read_text())
        fields = {f for f in FaultResult.__dataclass_fields__}
        meta = data.get("meta", {})
        return cls(
            faults=[FaultResult(**{k: v for k, v in f.items() if k in fields}) for f in data["faults"]],
            fuzz=FuzzResult(**data["fuzz"]),
            bad_input=[CaseResult(**c) for c in data["bad_input"]["results"]],
            access=[CaseResult(**c) for c in data["access"]["results"]],
            started_at=meta["started_at"], command=meta["command"], reruns=list(meta.get("reruns", [])),
        )

    def replace_faults(self, prefixes: tuple[str, ...], results: list[FaultResult], command: str) -> None:
        """Put ``results`` where the faults named with any of ``prefixes`` were (at the end if none)."""
        kept = [i for i, f in enumerate(self.faults) if not f.name.startswith(prefixes)]
        at = next((i for i in range(len(self.faults)) if i not in kept), len(self.faults))
        before = [self.faults[i] for i in kept if i < at]
        self.faults = before + results + [self.faults[i] for i in kept if i > at]
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.reruns.append(f"{', '.join(sorted({r.name for r in results}))}: rerun by `{command}` on {when}")

    def as_json(self) -> dict:
        return {
            "faults": [{**asdict(f), "passed": f.passed} for f in self.faults],
            "fuzz": asdict(self.fuzz),
            "bad_input": {"cases": len(self.bad_input), "passed": sum(c.passed for c in self.bad_input),
                          "results": [asdict(c) for c in self.bad_input]},
            "access": {"refusals_tested": len(self.access), "leaks": sum(not c.passed for c in self.access),
                       "results": [asdict(c) for c in self.access]},
            "meta": {"started_at": self.started_at, "command": self.command, "machine": f"{platform.machine()}, {platform.python_version()}",
                     "reruns": self.reruns},
        }

    def write(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        json_path, md_path = folder / "reliability.json", folder / "reliability.md"
        json_path.write_text(json.dumps(self.as_json(), indent=2) + "\n")
        md_path.write_text(self.markdown())
        return md_path, json_path

    def markdown(self) -> str:
        def fmt(value) -> str:
            if value is None:
                return "-"
            return f"{value:.1f}" if isinstance(value, float) else str(value)

        lines = [
            "# Reliability report", "",
            f"Generated by `{self.command}` on {self.started_at}. Every figure below comes from that one command, "
            "which starts the real local stack (every service as its own process, Celery worker and beat, embedded "
            "PostgreSQL and Redis on loopback), puts a steady bounded load on it, and injects each fault for real.", "",
            *[f"Since then: {r}." for r in self.reruns], *([""] if self.reruns else []),
            "## Faults", "",
            "| fault | load | requests | 5xx | no answer | degraded | acknowledged | stored | recovery (s) | held |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for f in self.faults:
            lines.append(f"| {f.name} | {f.load} | {f.requests} | {f.errors_5xx} | {f.no_answer} | {f.degraded} | "
                         f"{fmt(f.acknowledged)} | {fmt(f.stored)} | {fmt(f.recovery_s)} | {_verdict(f.passed)} |")
        lines.append("")
        lines += self._repeat_summary()
        for f in self.faults:
            lines.append(f"### {f.name}")
            lines.append(f"Fault: {f.fault}  ")
            if f.statuses:
                lines.append("Statuses: " + ", ".join(f"{k}: {v}" for k, v in f.statuses.items()) + "  ")
            lines += [f"- {'held' if ok else '**broken**'}: {check}" for check, ok in f.checks.items()]
            lines += [f"- note: {n}" for n in f.notes]
            lines.append("")
        z = self.fuzz
        lines += ["## Fuzzing (schemathesis, every service's OpenAPI)", "",
                  f"{z.cases} generated requests, {z.server_errors} server errors, {z.schema_mismatches} responses not matching their schema.", "",
                  "| service | cases | server errors | schema mismatches |", "|---|---:|---:|---:|"]
        for name, s in z.per_service.items():
            lines.append(f"| {name} | {s.get('cases', 0)} | {s.get('server_errors', 0)} | {s.get('schema_mismatches', 0)} |")
        lines += [f"- {f}" for f in z.failures[:20]]
        for title, cases in (("Bad input (hand-written)", self.bad_input), ("Access refusals (live gateway)", self.access)):
            lines += ["", f"## {title}", "", "| case | expected | got | held |", "|---|---|---|---|"]
            for c in cases:
                lines.append(f"| {c.name} | {c.expected} | {fmt(c.status)} | {'yes' if c.passed else '**NO** ' + c.detail} |")
        lines.append("")
        return "\n".join(lines)


    def _repeat_summary(self) -> list[str]:
        """Per fault run more than once: runs held, total 5xx, recovery time mean and spread."""
        runs: dict[str, list[FaultResult]] = {}
        for f in self.faults:
            runs.setdefault(f.name, []).append(f)
        repeated = {name: rs for name, rs in runs.items() if len(rs) > 1}
        if not repeated:
            return []
        lines = ["Over repeated runs (recovery: mean ± sample standard deviation, min-max):", "",
                 "| fault | runs | held | 5xx | acknowledged / stored | recovery (s) |", "|---|---:|---:|---:|---|---|"]
        for name, rs in repeated.items():
            rec = [r.recovery_s for r in rs if r.recovery_s is not None]
            if len(rec) > 1:
                spread = statistics.stdev(rec)
                recovery = f"{statistics.mean(rec):.1f} ± {spread:.1f} ({min(rec):.1f}-{max(rec):.1f})"
            else:
                recovery = "-" if not rec else f"{rec[0]:.1f}"
            acked = [r for r in rs if r.acknowledged is not None]
            ack = f"{sum(r.acknowledged for r in acked)} / {sum(r.stored or 0 for r in acked)}" if acked else "-"
            lines.append(f"| {name} | {len(rs)} | {sum(bool(r.passed) for r in rs)} | {sum(r.errors_5xx for r in rs)} | {ack} | {recovery} |")
        return lines + [""]


def _verdict(passed: bool | None) -> str:
    return "not run" if passed is None else "yes" if passed else "**NO**"
