"""The report's JSON has the shape the issue asks for, and the markdown says what broke."""

import json

from movierec.reliability.load import LoadSummary, Outcome
from movierec.reliability.report import CaseResult, FaultResult, ReliabilityReport


def test_summary_counts_and_recovery():
    s = LoadSummary(outcomes=[Outcome(0.0, 200), Outcome(1.0, 200, degraded=True, key="new"), Outcome(1.5, None, error="ConnectError"),
                              Outcome(2.0, 503, label="503 feedback_unavailable: x"), Outcome(3.0, 201, key="e1"), Outcome(4.0, 200, key="new")])
    assert (s.requests, s.errors_5xx, s.transport_errors, s.degraded) == (6, 1, 1, 1)
    assert s.acknowledged_keys() == {"e1", "new"}
    assert s.first_healthy_after(0.5, "new") == 4.0
    result = FaultResult("x", "f", "l").count(s)
    assert result.statuses == {"200": 3, "201": 1, "503": 1, "no answer": 1} and "1 x 503 feedback_unavailable: x" in result.notes


def test_json_shape_and_markdown(tmp_path):
    report = ReliabilityReport()
    held = FaultResult("ranker killed", "SIGKILL", "10 req/s", requests=100, recovery_s=3.5, checks={"zero 5xx": True})
    broken = FaultResult("Redis restarted", "stop", "10 req/s", requests=50, errors_5xx=2, acknowledged=20, stored=20, checks={"zero 5xx": False})
    report.faults += [held, broken, FaultResult("worker killed while retraining", "-", "-", notes=["not run: why"])]
    report.fuzz.cases, report.fuzz.server_errors = 40, 1
    report.access += [CaseResult("no key", "401", 401, True), CaseResult("wrong user", "403", 201, False, "not refused")]
    md, js = report.write(tmp_path)
    data = json.loads(js.read_text())
    first = data["faults"][0]
    assert {"name", "requests", "errors_5xx", "acknowledged", "stored", "recovery_s"} <= set(first)
    assert [f["passed"] for f in data["faults"]] == [True, False, None]
    assert data["fuzz"]["cases"] == 40 and data["fuzz"]["server_errors"] == 1
    assert data["access"] == {**data["access"], "refusals_tested": 2, "leaks": 1}
    text = md.read_text()
    assert "| Redis restarted |" in text and "**NO**" in text and "not run" in text and "broken**: zero 5xx" in text


def test_repeated_faults_get_mean_and_spread(tmp_path):
    report = ReliabilityReport()
    for recovery in (2.0, 4.0, 6.0):
        report.faults.append(FaultResult("ranker killed", "SIGKILL", "10 req/s", requests=10, recovery_s=recovery, checks={"zero 5xx": True}))
    text = report.markdown()
    assert "| ranker killed | 3 | 3 | 0 | - | 4.0 ± 2.0 (2.0-6.0) |" in text


def test_a_partial_rerun_replaces_its_faults_in_the_written_report(tmp_path):
    report = ReliabilityReport(command="movierec reliability run --repeat 1")
    report.faults += [FaultResult("ranker killed", "SIGKILL", "10 req/s", requests=100, checks={"zero 5xx": True}),
                      FaultResult("worker killed while retraining", "-", "-", notes=["not run: why"]),
                      FaultResult("Redis restarted", "stop", "10 req/s", requests=50, checks={"zero 5xx": True})]
    report.fuzz.cases = 40
    report.access.append(CaseResult("no key", "401", 401, True))
    report.write(tmp_path)

    loaded = ReliabilityReport.load(tmp_path)
    assert loaded.markdown() == (tmp_path / "reliability.md").read_text()
    rerun = [FaultResult(f"worker killed while retraining ({kill})", "SIGKILL", "5 req/s", requests=30, checks={"published once": True})
             for kill in ("pool process", "whole worker")]
    loaded.replace_faults(("worker killed while retraining",), rerun, "movierec reliability run --only retraining")
    loaded.write(tmp_path)

    data = json.loads((tmp_path / "reliability.json").read_text())
    assert [f["name"] for f in data["faults"]] == ["ranker killed", "worker killed while retraining (pool process)",
                                                   "worker killed while retraining (whole worker)", "Redis restarted"]
    assert data["fuzz"]["cases"] == 40 and data["access"]["refusals_tested"] == 1
    assert data["meta"]["command"] == "movierec reliability run --repeat 1" and "--only retraining" in data["meta"]["reruns"][0]
    assert "not run" not in (tmp_path / "reliability.md").read_text()
