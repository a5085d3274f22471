"""``movierec up`` as a user runs it: embedded servers when no URLs are set, clean stop on
SIGTERM, data kept across restarts; and the pipeline step rules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest

from movierec.launcher.pipeline import PIPELINE, command_exists, run_pipeline
from movierec.settings import REPO_ROOT, Settings

MOVIEREC = str(Path(sys.executable).parent / "movierec")


def _start_up(home: Path, offset: int, *args: str) -> tuple[subprocess.Popen, Path]:
    env = {k: v for k, v in os.environ.items() if k not in ("MOVIEREC_DATABASE_URL", "MOVIEREC_REDIS_URL")}
    env.update(MOVIEREC_HOME=str(home), OMP_NUM_THREADS="1")
    log = home.parent / f"up-{uuid.uuid4().hex[:6]}.log"
    proc = subprocess.Popen([MOVIEREC, "up", "--no-pipeline", "--port-offset", str(offset), "--no-prometheus", *args],
                            cwd=REPO_ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    return proc, log


def _wait_for(predicate, timeout_s: float, what: str, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout_s:.0f} s; launcher output:\n{log.read_text()[-3000:]}")


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.integration
@pytest.mark.slow
def test_up_on_embedded_servers_stops_cleanly_and_keeps_feedback(private_tmp: Path, port_offsets):
    home = private_tmp / "home"
    offset = port_offsets()
    feedback = f"http://127.0.0.1:{8003 + offset}"
    event = {"event_id": f"emb-{uuid.uuid4().hex}", "user_id": 9, "movie_id": 1, "kind": "watch", "watch_seconds": 600}

    proc, log = _start_up(home, offset, "--only", "feedback")
    _wait_for(lambda: "movierec is up" in log.read_text() or proc.poll() is not None, 180, "the stack was not up", log)
    assert proc.poll() is None, log.read_text()
    output = log.read_text()
    assert "starting embedded PostgreSQL" in output and "starting embedded Redis" in output
    assert (home / "servers" / "postgres" / "PG_VERSION").exists()
    assert httpx.get(f"{feedback}/readyz").json()["status"] == "ready"
    assert httpx.post(f"{feedback}/v1/events", json=event).status_code == 201
    # a real worker on the embedded Redis runs the invalidation task ("up" does not wait for the
    # worker, whose cold start imports torch: the wait covers that too)
    _wait_for(lambda: "invalidate_user_recs" in (home / "logs" / "worker.log").read_text()
              and "succeeded" in (home / "logs" / "worker.log").read_text(), 180, "the worker did not run the task", log)
    children = _descendants(proc.pid)
    assert len(children) >= 3  # feedback, worker, beat (+ the embedded servers)

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log.read_text()
    assert "stopped" in log.read_text()
    time.sleep(1)
    assert [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE] == []
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{feedback}/healthz", timeout=2)

    # started again on the same data folder: the event is still there, stored once
    proc, log = _start_up(home, offset, "--only", "feedback", "--no-celery")
    try:
        _wait_for(lambda: "movierec is up" in log.read_text() or proc.poll() is not None, 180, "the stack was not up again", log)
        assert httpx.post(f"{feedback}/v1/events", json=event).status_code == 200
        assert len(httpx.get(f"{feedback}/v1/users/9/events").json()["events"]) == 1
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=60) == 0 and "stopped" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def test_up_rejects_an_unknown_service_in_one_line(capfd):
    from typer.testing import CliRunner

    from movierec.cli import app

    result = CliRunner().invoke(app, ["up", "--only", "nosuch"])
    err = result.output + capfd.readouterr().err
    assert result.exit_code == 2
    assert "unknown service nosuch" in err and "Traceback" not in err
    result = CliRunner().invoke(app, ["up", "--scale", "policy=2"])
    err = result.output + capfd.readouterr().err
    assert result.exit_code == 2 and "--scale policy=2" in err and "ranker" in err


def test_pipeline_skips_done_steps_and_missing_commands(tmp_path: Path):
    settings = Settings(home=tmp_path / "home")
    from movierec.features.store import MODALITIES

    for step in PIPELINE:  # every output already there: nothing runs
        out = step.output(settings)
        if out.suffix == ".json":
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"modalities": {m: {} for m in MODALITIES[:-1]}}))
        else:
            out.mkdir(parents=True, exist_ok=True)
            (out / "marker").write_text("done")
    features = next(step for step in PIPELINE if step.args == ("features", "build"))
    assert not features.done(settings)  # an interrupted build (one modality missing) runs again
    features.output(settings).write_text(json.dumps({"modalities": {m: {} for m in MODALITIES}}))
    said: list[str] = []
    assert run_pipeline(settings, said.append) == []
    assert all("already there" in line for line in said) and len(said) == len(PIPELINE)
    assert command_exists(("data", "splits"))
    assert not command_exists(("no-such-group", "run"))


def test_a_policy_trained_for_another_ranker_width_is_trained_again(tmp_path: Path):
    settings = Settings(home=tmp_path / "home")
    policy = next(step for step in PIPELINE if step.args == ("rl", "train"))
    fusion, versions = settings.models_dir / "fusion" / "current", settings.models_dir / "policy" / "v1"
    fusion.mkdir(parents=True)
    versions.mkdir(parents=True)
    np.savez(fusion / "artifact.npz", item_vectors=np.zeros((3, 8), np.float32))
    np.savez(versions / "tables.npz", item_vectors=np.zeros((3, 4), np.float32))
    policy.output(settings).write_text("v1\n")
    assert not policy.done(settings)
    np.savez(versions / "tables.npz", item_vectors=np.zeros((3, 8), np.float32))
    assert policy.done(settings)
