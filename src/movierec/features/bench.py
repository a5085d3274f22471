"""Throughput of each encoder on this machine: real texts and posters, generated audio.

Inputs: catalog movies sampled with seed 0 (their texts, their posters) and generated 10 s clips
for audio (no trailer audio can be downloaded here). Each modality: one warm-up pass, then ``repeats`` timed passes over the same ``items`` inputs
(preparation and encoding both counted); mean and spread of items/s. Also the time to load the
whole feature store, as the ranker does at start.
"""

from __future__ import annotations

import io
import os
import platform
import statistics
import time

import numpy as np

from movierec.data import load_dataset
from movierec.features.config import FeatureSettings
from movierec.features.sources import catalog_sources, read_source
from movierec.features.store import FeatureStore
from movierec.settings import get_settings

BENCH_AUDIO_SECONDS = 10.0


def synthetic_trailer_audio(seconds: float, seed: int, sample_rate: int = 22050) -> bytes:
    """A WAV with a chord, a drum-like pulse and noise: sound with structure, made here."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    freqs = rng.uniform(110, 880, size=3)
    signal = sum(np.sin(2 * np.pi * f * t) for f in freqs) / 3
    pulse = (np.sin(2 * np.pi * rng.uniform(1, 3) * t) > 0.9) * rng.normal(0, 0.5, len(t))
    samples = 0.3 * signal + 0.2 * pulse + 0.02 * rng.normal(size=len(t))
    buf = io.BytesIO()
    sf.write(buf, samples.astype(np.float32), sample_rate, format="WAV")
    return buf.getvalue()


def device_label() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(0)}"
    return f"cpu:{platform.processor() or platform.machine()} ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})"


def _inputs(modality: str, items: int, seed: int = 0) -> list:
    if modality == "audio":
        return [synthetic_trailer_audio(BENCH_AUDIO_SECONDS, seed) for seed in range(items)]
    sources = catalog_sources(load_dataset(), modality)
    ids = sorted(sources)
    picked = np.random.default_rng(seed).choice(len(ids), size=min(items, len(ids)), replace=False)
    chosen = [sources[ids[i]] for i in sorted(picked)]
    return [read_source(s) for s in chosen]


def run_benchmark(fs: FeatureSettings, modalities: list[str], *, items: int, repeats: int, log=print) -> dict:
    # on a shared machine the figures depend on what else runs: the load average says how busy it was
    result: dict = {"device": device_label(), "items": items, "repeats": repeats, "seed": 0,
                    "load_average_1min_at_start": round(os.getloadavg()[0], 2), "modalities": {}}
    for modality in modalities:
        raws = _inputs(modality, items)
        if not raws:
            log(f"{modality}: no inputs on this machine, skipped")
            continue
        encoder = fs.create(modality)
        encoder.encode(raws[: min(4, len(raws))])  # warm-up: lazy init, caches
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            encoder.encode(raws)
            rates.append(len(raws) / (time.perf_counter() - start))
        entry = {"encoder": encoder.name, "dim": encoder.dim, "n": len(raws), "items_per_second_mean": round(statistics.mean(rates), 2),
                 "items_per_second_std": round(statistics.stdev(rates), 2) if len(rates) > 1 else 0.0,
                 "input": f"{BENCH_AUDIO_SECONDS:g} s generated WAV clips" if modality == "audio" else "catalog movies sampled with seed 0"}
        result["modalities"][modality] = entry
        log(f"{modality} ({encoder.name}, {encoder.dim}-dim): {entry['items_per_second_mean']:.1f} ± {entry['items_per_second_std']:.1f} items/s over {repeats} runs of {len(raws)}")
    store = FeatureStore(get_settings().features_dir)
    if store.available():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            loaded = store.load_all()
            times.append(time.perf_counter() - start)
        rows = max(len(f.movie_ids) for f in loaded.values())
        result["store_load"] = {"modalities": sorted(loaded), "movies": rows, "seconds_mean": round(statistics.mean(times), 3),
                                "seconds_max": round(max(times), 3)}
        log(f"store load ({', '.join(sorted(loaded))}; {rows:,} movies): {statistics.mean(times):.3f} s mean, {max(times):.3f} s max")
    result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    return result
