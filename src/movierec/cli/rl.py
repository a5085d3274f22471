"""``movierec rl``: train and publish the DQN re-ranker, benchmark it, retrain it from feedback."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from movierec.cli.overrides import parse_set_pairs
from movierec.cli.errors import fail_on_data_error
from movierec.data.errors import DataError
from movierec.settings import REPO_ROOT, get_settings

app = typer.Typer(no_args_is_help=True, help="Simulator, DQN re-ranker, baselines and online retraining.")
console = Console()

SET_HELP = "Config override DOTTED.KEY=VALUE, VALUE read as JSON when it parses (e.g. dqn.iterations=500, simulator.boredom_weight=0). Repeatable."
RANKER_HELP = "Ranker artifact: 'auto' (the published fusion model, else a factorisation on the train split), 'mf' (that factorisation), or a folder."


class RLConfigError(DataError):
    """A bad RL option or config override."""


def _config(pairs: list[str], seeds: str | None = None):
    from movierec.rl.config import ExperimentConfig, apply_overrides

    overrides = parse_set_pairs(pairs, RLConfigError, key_hint="DOTTED.KEY")
    if seeds is not None:
        try:
            overrides["seeds"] = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise RLConfigError(f"--seeds: expected comma-separated integers, got {seeds!r}") from None
    try:
        return apply_overrides(ExperimentConfig(), overrides)
    except KeyError as exc:
        raise RLConfigError(f"--set: unknown config key {exc.args[0]!r}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise RLConfigError(f"--set: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}") from None


def _world(config, ranker: str):
    from movierec.rl.world import build_world

    settings = get_settings()
    if ranker == "auto":
        return build_world(config, settings)
    if ranker == "mf":
        return build_world(config, settings, ranker_dir=None, prefer_fusion=False)
    folder = Path(ranker)
    if not folder.is_dir():
        raise RLConfigError(f"--ranker: {folder} is not a folder (use auto, mf or an artifact folder)")
    return build_world(config, settings, ranker_dir=folder)


@app.command()
@fail_on_data_error
def train(
    seed: int = typer.Option(0, help="Seed of the simulator and the network."),
    ranker: str = typer.Option("auto", help=RANKER_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    publish: bool = typer.Option(True, help="Publish as the served version (atomic `current` pointer)."),
) -> None:
    """Train the DQN on simulated sessions of every user and publish it to models/policy."""
    from movierec.rl.artifact import artifact_from_learner, publish_policy, save_policy
    from movierec.rl.training import train_dqn
    from movierec.rl.world import serving_tables

    config = _config(set_)
    world = _world(config, ranker)
    console.print(f"simulator: {world.n_users} users, {len(world.items)} movies; ranker {world.ranker_version}")
    learner, curve = train_dqn(world, np.arange(world.n_users), seed)
    metadata = {"seed": seed, "ranker_version": world.ranker_version, "dataset_version": world.dataset_version,
                "trained_on": "simulator", "training_watch_time_last": curve.watch_time[-1] if curve.watch_time else None}
    items, user_ids, user_vectors = serving_tables(world)
    metadata["simulated_movies"] = len(world.items)
    artifact = artifact_from_learner(learner, config, items, user_ids, user_vectors, metadata)
    policy_dir = get_settings().models_dir / "policy"
    if publish:
        folder = publish_policy(artifact, policy_dir)
        console.print(f"published policy {artifact.version} -> {folder}")
        _drop_lists_the_version_before_chose()
    else:
        policy_dir.mkdir(parents=True, exist_ok=True)
        save_policy(artifact, policy_dir / artifact.version)
        console.print(f"saved policy {artifact.version} (not published)")


@app.command()
@fail_on_data_error
def evaluate(
    seeds: str = typer.Option("0,1,2,3,4", help="Comma-separated seeds (at least 5 for the report)."),
    ranker: str = typer.Option("mf", help=RANKER_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    reports_dir: Path = typer.Option(REPO_ROOT / "reports", help="Where rl.md, rl.json and figures go."),
    remember: bool = typer.Option(True, help="Remember these results as the ones `movierec rl report` redraws (off for side experiments)."),
) -> None:
    """Benchmark DQN against greedy, LinUCB, random and popularity on held-out simulated users."""
    from movierec.rl.experiment import run_benchmark
    from movierec.rl.report import write_report

    config = _config(set_, seeds)
    world = _world(config, ranker)
    bench_dir = get_settings().models_dir / "rl" / "bench"
    summary = run_benchmark(world, bench_dir)
    if remember:
        (bench_dir / "latest.json").write_text(json.dumps(summary))
    for path in write_report(summary, reports_dir):
        console.print(f"wrote {path}")
    _print_summary(summary)


@app.command()
@fail_on_data_error
def report(reports_dir: Path = typer.Option(REPO_ROOT / "reports", help="Where rl.md, rl.json and figures go.")) -> None:
    """Rewrite the report from the last `movierec rl evaluate` results."""
    from movierec.rl.experiment import POLICIES
    from movierec.rl.report import write_report

    latest = get_settings().models_dir / "rl" / "bench" / "latest.json"
    if not latest.exists():
        raise RLConfigError(f"no benchmark results at {latest}: run `movierec rl evaluate` first")
    summary = json.loads(latest.read_text())
    missing = [p for p in POLICIES if p not in summary["watch_time"]]
    if missing:
        raise RLConfigError(f"{latest} has no results for {', '.join(missing)}: run `movierec rl evaluate` again")
    for path in write_report(summary, reports_dir):
        console.print(f"wrote {path}")
    _print_summary(summary)


def _print_summary(summary: dict) -> None:
    from movierec.rl.experiment import METRICS, POLICIES

    table = Table(title="held-out simulated users: mean [95% interval] over seeds")
    table.add_column("policy")
    for m in METRICS:
        table.add_column(m, justify="right")
    for p in POLICIES:
        table.add_row(p, *[f"{summary['intervals'][m][p]['mean']:.3g} [{summary['intervals'][m][p]['ci95'][0]:.3g}, "
                           f"{summary['intervals'][m][p]['ci95'][1]:.3g}]" for m in METRICS])
    console.print(table)
    g = summary["goals"]
    console.print(f"DQN vs greedy watch time: {g['dqn_vs_greedy_watch_time_gain']:+.1%} "
                  f"(>= +10%: {g['dqn_beats_greedy_by_10pct']}, intervals apart: {g['intervals_do_not_overlap']}); "
                  f"training {g['train_seconds_mean']:.0f} s per seed")
    console.print(f"DQN as served (with its exploration) vs greedy watch time: {g['served_dqn_vs_greedy_watch_time_gain']:+.1%} "
                  f"(>= +10%: {g['served_dqn_beats_greedy_by_10pct']}, intervals apart: {g['served_intervals_do_not_overlap']})")


@app.command()
@fail_on_data_error
def retrain(
    min_slates: int = typer.Option(20, min=1, help="Fewest usable served slates to fine-tune on."),
    tolerance: float = typer.Option(0.0, min=0.0, help="Publish when the lower bound of the candidate's SNIPS gain over the current policy (held-out users; 96.96% at the served version's first check, more at each later one) is above -tolerance."),
    dry_run: bool = typer.Option(False, help="Value the candidate but do not publish it."),
    min_held_out_users: int = typer.Option(20, min=1, help="Fewest held-out users whose slates value the candidate."),
) -> None:
    """Fine-tune the served policy on recorded feedback now (what the Celery task does on a schedule)."""
    from movierec.tasks.policy import retrain_on_broker

    result = retrain_on_broker(min_slates=min_slates, tolerance=tolerance, publish=not dry_run, min_held_out_users=min_held_out_users)
    console.print_json(json.dumps(result))


@app.command("fine-tune-study")
@fail_on_data_error
def fine_tune_study(
    epochs: str = typer.Option("1,3,10,20", help="Comma-separated fine-tuning lengths to compare (retraining uses rl.online.FINE_TUNE_EPOCHS, 3)."),
    log_users: int = typer.Option(200, min=2, help="Simulated users whose sessions the served policy logs (the check holds 30% of them out)."),
    eval_users: int = typer.Option(200, min=2, help="Other simulated users on whom each candidate and the served policy are served on-policy."),
    seed: int = typer.Option(0, help="Seed of the users drawn, the simulator and the fine-tuning."),
    version: str | None = typer.Option(None, help="The published policy version to start from (default: the served one)."),
    caps: str = typer.Option("100,10", help="Comma-separated importance-weight caps to value each candidate with besides the check's uncapped weights ('' for none)."),
    temperature: float | None = typer.Option(None, min=0.0, help="Serve with this softmax exploration temperature (dqn.serving_temperature) "
                                             "instead of the served policy's own, in the log, the candidates and their on-policy value."),
    ranker: str = typer.Option("auto", help=RANKER_HELP),
    out: Path | None = typer.Option(None, help="Where the record goes (default reports/measurements/fine_tune_study_seed<seed>[_t<temperature>].json, "
                                                "which the next `movierec bench serving` report includes)."),
) -> None:
    """Fine-tune the published policy on a simulated log for several lengths; for each candidate,
    what the off-policy check sees (SNIPS, ESS, bound) against its true CTR gain in the simulator."""
    from movierec.benchmarks.records import fine_tune_study_record_path, save_record
    from movierec.rl.artifact import PolicyArtifactError, load_current, load_policy
    from movierec.rl.config import apply_overrides
    from movierec.rl.fine_tune_study import as_records, run_study

    try:
        lengths = [int(e) for e in epochs.split(",") if e.strip()]
    except ValueError:
        raise RLConfigError(f"--epochs: expected comma-separated integers, got {epochs!r}") from None
    if not lengths or min(lengths) < 1:
        raise RLConfigError(f"--epochs: every length must be at least 1, got {epochs!r}")
    try:
        weight_caps = tuple(float(c) for c in caps.split(",") if c.strip())
    except ValueError:
        raise RLConfigError(f"--caps: expected comma-separated numbers, got {caps!r}") from None
    if any(not c > 0 for c in weight_caps):
        raise RLConfigError(f"--caps: every cap must be above 0, got {caps!r}")
    policy_dir = get_settings().models_dir / "policy"
    try:
        served = load_current(policy_dir) if version is None else load_policy(policy_dir / version)
    except (FileNotFoundError, PolicyArtifactError) as exc:
        raise RLConfigError(f"--version: {exc}") from None
    if served is None:
        raise RLConfigError("no published policy to fine-tune (run `movierec rl train`)")
    if temperature is not None:
        served = dataclasses.replace(served, config=apply_overrides(served.config, {"dqn.serving_temperature": temperature}))
    world = _world(_config([]), ranker)
    if log_users + eval_users > world.n_users:
        raise RLConfigError(f"--log-users + --eval-users = {log_users + eval_users}, more than the simulator's {world.n_users} users")
    order = np.random.default_rng([seed, 11]).permutation(world.n_users)
    rows = run_study(world, served, lengths, log_users=np.sort(order[:log_users]),
                     eval_users=np.sort(order[log_users:log_users + eval_users]), seed=seed, caps=weight_caps, say=console.print)
    out = out or fine_tune_study_record_path(REPO_ROOT / "reports", seed, served.config.dqn.serving_temperature)
    save_record(out, {"seed": seed, "served": served.version, "serving_epsilon": served.config.dqn.serving_epsilon,
                      "serving_temperature": served.config.dqn.serving_temperature, "log_users": log_users, "eval_users": eval_users,
                      "epochs": lengths, "caps": list(weight_caps), "rows": as_records(rows)})
    console.print(f"wrote {out}")


@app.command()
def use(version: str = typer.Argument(..., help="A published version (`movierec rl status` names the current one).")) -> None:
    """Serve an already published policy version again (a rollback); the policy service reloads it
    and the gateway's cached lists (the version before chose them) are dropped."""
    from movierec.rl.artifact import PolicyArtifactError, current_version, use_version

    policy_dir = get_settings().models_dir / "policy"
    before = current_version(policy_dir)
    try:
        use_version(policy_dir, version)
    except (FileNotFoundError, PolicyArtifactError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"current policy: {version} (was {before})")
    if version != before:
        _drop_lists_the_version_before_chose()


def _drop_lists_the_version_before_chose() -> None:
    """After the served version changed: drop the gateway's cached lists in the Redis it serves
    from (``MOVIEREC_REDIS_URL``, else the embedded one a running ``movierec up`` started under
    this home). Without either there is no cache to drop."""
    from movierec.launcher.servers import running_embedded_redis_url
    from movierec.tasks.cache import drop_cached_lists_after_publish

    settings = get_settings()
    url = settings.redis_url or running_embedded_redis_url(settings.home)
    if url is None:
        return
    dropped = drop_cached_lists_after_publish(url)
    console.print("cached lists: " + ("Redis unreachable, they expire with the cache TTL" if dropped is None else f"{dropped} dropped"))


@app.command()
def status() -> None:
    """The served policy version and its metadata."""
    from movierec.rl.artifact import current_version, load_policy

    policy_dir = get_settings().models_dir / "policy"
    version = current_version(policy_dir)
    if version is None:
        console.print(f"no published policy in {policy_dir}: the policy service passes the ranker's order through (version 'greedy')")
        return
    console.print(f"current policy: {version}")
    console.print_json(json.dumps(load_policy(policy_dir / version).metadata, default=str))
