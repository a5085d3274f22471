"""``movierec features``: build the feature store, summarise it, list encoders, benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from movierec.cli.errors import fail_on_data_error
from movierec.data import load_dataset
from movierec.data.errors import DataError
from movierec.features.config import COMPUTED_MODALITIES, FeatureSettings
from movierec.features.store import MODALITIES, FeatureStore
from movierec.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Multimodal item features: build, summary, encoders, bench.")
console = Console()


def _feature_settings(text_model: str | None, poster_encoder: str | None, audio_encoder: str | None, options: list[str]) -> FeatureSettings:
    fs = FeatureSettings()
    if text_model:
        fs.text_options = {**fs.text_options, "model": text_model}
    if poster_encoder:
        fs.poster_encoder = poster_encoder
    if audio_encoder:
        fs.audio_encoder = audio_encoder
    for item in options:
        key, sep, value = item.partition("=")
        modality, dot, name = key.partition(".")
        if not sep or not dot or modality not in COMPUTED_MODALITIES:
            raise DataError(f"--option {item!r}: expected MODALITY.KEY=VALUE with MODALITY one of {', '.join(COMPUTED_MODALITIES)}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value  # a bare string such as a path or a model name
        setattr(fs, f"{modality}_options", {**getattr(fs, f"{modality}_options"), name: parsed})
    return fs


def _store(store: Path | None) -> FeatureStore:
    return FeatureStore(store or get_settings().features_dir)


def _check_modalities(modalities: list[str]) -> list[str]:
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown:
        raise DataError(f"unknown modality {unknown[0]!r}; known: {', '.join(MODALITIES)}")
    return modalities


@app.command()
@fail_on_data_error
def build(
    modality: list[str] = typer.Option([], "--modality", "-m", help=f"Modalities to build (default all): {', '.join(MODALITIES)}."),
    store: Path = typer.Option(None, help="Store folder (default: $MOVIEREC_HOME/features)."),
    text_model: str = typer.Option(None, help="Hugging Face model id or local folder for the text encoder."),
    poster_encoder: str = typer.Option(None, help="Poster encoder name (see `movierec features encoders`)."),
    audio_encoder: str = typer.Option(None, help="Audio encoder name."),
    option: list[str] = typer.Option([], "--option", "-o", help="Encoder option MODALITY.KEY=VALUE, e.g. poster.pretrained=/m/clip.pt"),
    batch_size: int = typer.Option(None, min=1, help="Items per encoder batch (default: the encoder's)."),
    quiet: bool = typer.Option(False, help="No progress bars."),
) -> None:
    """Fill the feature store for the whole catalog; only new or changed movies are recomputed."""
    from movierec.features.catalog_build import REPORT_FILE, build_feature_store

    chosen = _check_modalities(modality) or list(MODALITIES)
    fs = _feature_settings(text_model, poster_encoder, audio_encoder, option)
    target = _store(store)
    ds = load_dataset()
    report = build_feature_store(ds, target, fs, chosen, batch_size=batch_size, progress=not quiet, log=console.print)
    skipped = sum(len(r.get("skipped", {})) for r in report["modalities"].values())
    console.print(f"store {target.root}; {skipped} item(s) skipped, reasons in {target.root / REPORT_FILE}")


@app.command()
@fail_on_data_error
def summary(store: Path = typer.Option(None, help="Store folder (default: $MOVIEREC_HOME/features).")) -> None:
    """Coverage and dimensions of every modality in the store."""
    target = _store(store)
    names = target.available()
    if not names:
        raise DataError(f"no features in {target.root} (run `movierec features build`)")
    console.print(f"feature store {target.root}", highlight=False)
    console.print(f"{'modality':16s} {'present':>7s} {'of':>6s} {'dim':>5s} {'skipped':>7s} {'pending':>7s}  encoder", highlight=False)
    for name in names:
        f = target.load(name)
        p = f.provenance
        pending = 0 if p.get("complete", True) else p.get("pending", 0)
        console.print(f"{name:16s} {int(f.mask.sum()):7d} {len(f.movie_ids):6d} {f.dim:5d} {len(p.get('skipped', {})):7d} "
                      f"{pending:7d}  {p.get('encoder', '?')} ({p.get('config_hash', '?')[:8]})", highlight=False, soft_wrap=True)
    console.print("pending: a build is still running or stopped early (rerun `movierec features build` to finish)", highlight=False)


@app.command()
@fail_on_data_error
def similar(
    movie_id: int = typer.Argument(..., help="MovieLens movie id."),
    modality: str = typer.Option("text", "--modality", "-m", help="Modality whose vectors are compared."),
    k: int = typer.Option(5, "--k", "-k", min=1, help="How many neighbours."),
    store: Path = typer.Option(None, help="Store folder (default: $MOVIEREC_HOME/features)."),
) -> None:
    """The movies nearest to MOVIE_ID by one modality (cosine similarity)."""
    from movierec.features.similarity import most_similar

    _check_modalities([modality])
    catalog = load_dataset().catalog
    title = lambda m: catalog.loc[m, "title"] if m in catalog.index else f"movie {m}"  # noqa: E731
    neighbours = most_similar(_store(store).load(modality), movie_id, k)
    console.print(f"nearest to {title(movie_id)} by {modality}:", highlight=False)
    for neighbour, score in neighbours:
        console.print(f"  {score:6.3f}  {title(neighbour)}", highlight=False)


@app.command()
def encoders() -> None:
    """Registered encoders per modality."""
    from movierec.features.encoder import ENCODERS, known_encoders

    for name in known_encoders():
        cls = ENCODERS[name]
        console.print(f"[bold]{name}[/bold] ({cls.modality}, v{cls.version}): {cls.preprocessing}")


@app.command()
@fail_on_data_error
def bench(
    items: int = typer.Option(64, min=1, help="Items per modality."),
    repeats: int = typer.Option(3, min=1, help="Timed repeats (mean and spread reported)."),
    modality: list[str] = typer.Option([], "--modality", "-m", help="Modalities (default text, poster, audio)."),
    report: Path = typer.Option(Path("reports/features.json"), help="Where the figures are written (JSON)."),
) -> None:
    """Items per second per modality on this machine, with real encoders and real posters."""
    from movierec.features.bench import run_benchmark

    chosen = _check_modalities(modality) or list(COMPUTED_MODALITIES)
    result = run_benchmark(FeatureSettings(), chosen, items=items, repeats=repeats, log=console.print)
    report.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(report.read_text()) if report.exists() else {}
    previous.setdefault("bench", {})[result["device"]] = result
    report.write_text(json.dumps(previous, indent=1))
    console.print(f"figures written to {report}")
