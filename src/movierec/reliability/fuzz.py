"""Fuzz a running service from its own OpenAPI document with schemathesis: every operation gets a
bounded number of generated requests; a 5xx is a server error, an answer its schema does not
describe is a schema mismatch."""

from __future__ import annotations

from dataclasses import dataclass, field

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import response_schema_conformance


@dataclass
class ServiceFuzz:
    cases: int = 0
    server_errors: int = 0
    schema_mismatches: int = 0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"cases": self.cases, "server_errors": self.server_errors, "schema_mismatches": self.schema_mismatches}


def fuzz_service(base_url: str, *, max_examples: int = 15, timeout_s: float = 30.0, exclude_paths: tuple[str, ...] = ()) -> ServiceFuzz:
    """Fuzz every operation of the service at ``base_url`` (derandomized: reruns send the same requests)."""
    schema = schemathesis.openapi.from_url(base_url.rstrip("/") + "/openapi.json")
    out = ServiceFuzz()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in exclude_paths:
            continue
        label = f"{operation.method.upper()} {operation.path}"

        @settings(max_examples=max_examples, database=None, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        @given(case=operation.as_strategy())
        def run(case):
            response = case.call(base_url=base_url, timeout=timeout_s)
            out.cases += 1
            if response.status_code >= 500:
                out.server_errors += 1
                out.failures.append(f"{label}: {response.status_code} {response.text[:150]}")
                return
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except Exception as exc:  # noqa: BLE001 - schemathesis raises a failure group; count it, keep going
                out.schema_mismatches += 1
                first = str(exc).strip().splitlines()
                out.failures.append(f"{label}: {response.status_code} does not match its schema ({first[0][:150] if first else type(exc).__name__})")

        run()
    return out
