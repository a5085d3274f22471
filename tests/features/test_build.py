"""The incremental, resumable store build on real posters and texts."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from movierec.features.build import build_modality
from movierec.features.encoder import Encoder
from movierec.features.store import FeatureStore, FeatureStoreError
from tests.conftest import shared_path

pytestmark = pytest.mark.slow

POSTER_IDS = [1, 2, 3, 5, 6, 7]


@pytest.fixture
def poster_folder(tmp_path):
    folder = tmp_path / "posters"
    folder.mkdir()
    for m in POSTER_IDS:
        shutil.copy(shared_path("data/posters") / f"{m}.jpg", folder / f"{m}.jpg")
    (folder / "9.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def poster_sources(folder):
    return {int(p.stem): p for p in sorted(folder.glob("*.jpg"))}


class CountingEncoder:
    """Wraps a real encoder; counts encoded items, and can fail on a given batch like a crash."""

    def __init__(self, inner: Encoder, crash_on_batch: int | None = None):
        self.inner, self.crash_on_batch, self.batches, self.encoded = inner, crash_on_batch, 0, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_prepared(self, items):
        self.batches += 1
        if self.crash_on_batch is not None and self.batches == self.crash_on_batch:
            raise KeyboardInterrupt("simulated crash")
        self.encoded += len(items)
        return self.inner.encode_prepared(items)


def test_build_skips_a_corrupt_poster_and_recomputes_only_what_changed(tmp_path, poster_folder, poster_encoder):
    store = FeatureStore(tmp_path / "store")
    catalog_ids = np.array(POSTER_IDS + [9, 11], np.int64)  # 11 has no poster at all
    first = build_modality(store, "poster", poster_encoder, poster_sources(poster_folder), catalog_ids=catalog_ids, batch_size=4, progress=False)
    assert first.computed == 6 and first.reused == 0 and first.present == 6
    assert "not a readable image" in first.skipped[9] or "corrupt" in first.skipped[9]
    feats = store.load("poster")
    assert list(feats.movie_ids) == sorted(catalog_ids) and feats.dim == 1280
    present = dict(zip(feats.movie_ids.tolist(), feats.mask.tolist()))
    assert present[9] is False and present[11] is False and all(present[m] for m in POSTER_IDS)
    assert feats.provenance["skipped"]["9"]["reason"] == first.skipped[9]
    assert set(feats.provenance["source_hashes"]) == {str(m) for m in POSTER_IDS}

    # one poster replaced by another image: only it is recomputed, and its vector changes
    before = feats.matrix[list(feats.movie_ids).index(3)].copy()
    shutil.copy(shared_path("data/posters") / "10.jpg", poster_folder / "3.jpg")
    counting = CountingEncoder(poster_encoder)
    second = build_modality(store, "poster", counting, poster_sources(poster_folder), catalog_ids=catalog_ids, progress=False)
    assert counting.encoded == 1 and second.computed == 1 and second.reused == 5
    assert 9 in second.skipped  # the unchanged bad file is not retried, and stays recorded
    after = store.load("poster")
    assert not np.allclose(after.matrix[list(after.movie_ids).index(3)], before)
    np.testing.assert_allclose(after.matrix[after.mask & (after.movie_ids != 3)], feats.matrix[feats.mask & (feats.movie_ids != 3)])


def test_build_resumes_after_a_crash(tmp_path, poster_folder, poster_encoder):
    store = FeatureStore(tmp_path / "store")
    sources = {m: p for m, p in poster_sources(poster_folder).items() if m != 9}
    crashing = CountingEncoder(poster_encoder, crash_on_batch=3)
    with pytest.raises(KeyboardInterrupt):
        build_modality(store, "poster", crashing, sources, catalog_ids=np.array(POSTER_IDS), batch_size=2, checkpoint_batches=1, progress=False)
    assert crashing.encoded == 4 and (store.modality_dir("poster") / "checkpoint.npz").exists()
    partial = store.load("poster")  # what was done is published, marked incomplete, the rest masked
    assert partial.mask.sum() == 4 and partial.provenance["complete"] is False and partial.provenance["pending"] == 2

    counting = CountingEncoder(poster_encoder)
    report = build_modality(store, "poster", counting, sources, catalog_ids=np.array(POSTER_IDS), batch_size=2, progress=False)
    assert report.resumed == 4 and report.computed == 2 and counting.encoded == 2
    assert store.load("poster").mask.all() and store.load("poster").provenance["complete"] is True
    assert not (store.modality_dir("poster") / "checkpoint.npz").exists()
    # the resumed vectors are the ones a clean build gives
    clean_store = FeatureStore(tmp_path / "clean")
    build_modality(clean_store, "poster", poster_encoder, sources, catalog_ids=np.array(POSTER_IDS), progress=False)
    np.testing.assert_allclose(store.load("poster").matrix, clean_store.load("poster").matrix, atol=1e-5)


def test_changed_encoder_config_recomputes_everything(tmp_path, text_encoder):
    from movierec.features.encoder import create_encoder

    store = FeatureStore(tmp_path / "store")
    sources = {1: "Toy Story (1995). Genres: Animation", 2: "Heat (1995). Genres: Crime"}
    build_modality(store, "text", text_encoder, sources, catalog_ids=np.array([1, 2]), progress=False)
    again = build_modality(store, "text", text_encoder, sources, catalog_ids=np.array([1, 2]), progress=False)
    assert again.computed == 0 and again.reused == 2
    shorter = create_encoder("sentence-transformer", {"device": "cpu", "max_seq_length": 8})
    assert shorter.config_hash() != text_encoder.config_hash()
    changed = build_modality(store, "text", shorter, sources, catalog_ids=np.array([1, 2]), progress=False)
    assert changed.computed == 2 and store.load("text").provenance["config_hash"] == shorter.config_hash()


def test_upsert_adds_a_movie_that_a_rebuild_keeps(tmp_path, text_encoder):
    store = FeatureStore(tmp_path / "store")
    sources = {1: "Toy Story (1995)", 2: "Heat (1995)"}
    build_modality(store, "text", text_encoder, sources, catalog_ids=np.array([1, 2]), progress=False)
    new_vector = text_encoder.encode(["A brand new film (2030)"])[0]
    store.upsert("text", 500000, new_vector, "h", text_encoder.describe(), text_encoder.config_hash())
    feats = store.load("text")
    assert list(feats.movie_ids) == [1, 2, 500000] and feats.mask.all()
    with pytest.raises(FeatureStoreError, match="rebuild"):
        store.upsert("text", 7, new_vector, "h", text_encoder.describe(), "another-config")
    build_modality(store, "text", text_encoder, sources, catalog_ids=np.array([1, 2]), progress=False)
    rebuilt = store.load("text")
    assert 500000 in rebuilt.movie_ids.tolist()
    np.testing.assert_allclose(rebuilt.aligned(np.array([500000]))[0][0], new_vector)


def test_catalog_build_with_trailers_report_and_summary(tmp_path, shared_settings, text_encoder, monkeypatch):
    """The whole-catalog entry point on a 12-movie slice of ml-latest-small, then the CLI summary."""
    from typer.testing import CliRunner

    from movierec.cli import app
    from movierec.data import load_dataset
    from movierec.features.catalog_build import REPORT_FILE, build_feature_store
    from movierec.features.config import FeatureSettings

    ds = load_dataset(shared_settings)
    ivector_ids = ds.trailer_features["ivector"].movie_ids[:6]
    keep = np.union1d(ivector_ids, ds.catalog.index.to_numpy()[:6])
    ds.catalog = ds.catalog.loc[keep]
    fs = FeatureSettings()
    monkeypatch.setattr(FeatureSettings, "create", lambda self, modality: text_encoder)  # share the loaded model
    store = FeatureStore(tmp_path / "store")
    report = build_feature_store(ds, store, fs, ["text", "trailer_ivector", "trailer_avf", "audio"], progress=False, log=lambda *_: None)
    assert report["modalities"]["text"]["present"] == len(keep)
    assert report["modalities"]["trailer_ivector"]["present"] == 6 and report["modalities"]["trailer_ivector"]["dim"] == 40
    assert report["modalities"]["audio"]["status"] == "no source files configured"
    assert json.loads((store.root / REPORT_FILE).read_text())["modalities"]["text"]["computed"] == len(keep)
    ivec = store.load("trailer_ivector")
    assert ivec.mask.sum() == 6 and not ivec.matrix[~ivec.mask].any()

    result = CliRunner().invoke(app, ["features", "summary", "--store", str(store.root)])
    assert result.exit_code == 0, result.output
    assert "trailer_ivector" in result.output and "384" in result.output


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path):
    from typer.testing import CliRunner

    from movierec.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["features", "summary", "--store", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "run `movierec features build`" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["features", "build", "-m", "smell"])
    assert result.exit_code == 2 and "unknown modality 'smell'" in result.output
    result = runner.invoke(app, ["features", "build", "-o", "poster", "--store", str(tmp_path / "s")])
    assert result.exit_code == 2 and "MODALITY.KEY=VALUE" in result.output


def test_most_similar_ranks_by_cosine_and_skips_masked_rows():
    from movierec.features.similarity import most_similar
    from movierec.features.store import ModalityFeatures

    feats = ModalityFeatures("text", [1, 2, 3, 4], [[1, 0], [0.9, 0.1], [0, 1], [1, 0]], [True, True, True, False])
    assert [m for m, _ in most_similar(feats, 1, k=3)] == [2, 3]  # 4 is masked: never a neighbour
    with pytest.raises(FeatureStoreError, match="no text features"):
        most_similar(feats, 4)
