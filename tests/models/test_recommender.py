from __future__ import annotations

import numpy as np
import pytest

from movierec.models.checkpoint import save_trained
from movierec.models.config import FusionConfig
from movierec.models.item_content import build_item_content
from movierec.models.recommender import RecommenderInputError, load_recommender
from movierec.models.serving import ServingArtifact
from movierec.models.training import train_fusion


@pytest.fixture
def saved_model(tmp_path, tiny_ratings, tiny_features, tiny_catalog_ids):
    content = build_item_content(tiny_features, tiny_catalog_ids, ["text", "poster"])
    trained = train_fusion(tiny_ratings, content, FusionConfig(epochs=3, dim=8, token_dim=8, heads=2), progress=False)
    save_trained(trained, tmp_path / "fusion", "v1", {"data_version": "tiny"})
    return tmp_path / "fusion" / "current", trained


def test_artifact_scores_match_the_trained_model(saved_model):
    folder, trained = saved_model
    artifact = ServingArtifact.load(folder)
    q, b, att = trained.item_side()
    np.testing.assert_allclose(artifact.item_vectors, q, rtol=1e-6)
    assert artifact.modality_names == ["text", "poster"]
    # attention rows sum to 1 over present modalities and are 0 where a poster is missing
    np.testing.assert_allclose(artifact.modality_attention.sum(axis=1), 1.0, rtol=1e-5)
    missing_poster = ~trained.content.masks[:, 1]
    assert np.all(artifact.modality_attention[missing_poster, 1] == 0)
    assert artifact.metadata["checkpoint"] == "checkpoints/v1"


def test_new_item_embedding_matches_the_catalog_path(saved_model, tiny_features):
    folder, trained = saved_model
    rec = load_recommender(folder)
    # a catalog movie re-embedded from its raw features equals its content-only item side
    row = 62  # one of the unrated movies: its vector is content only
    feats = {"text": tiny_features["text"].matrix[row]}
    if tiny_features["poster"].mask[row]:
        feats["poster"] = tiny_features["poster"].matrix[row]
    new = rec.embed_new_item(feats)
    np.testing.assert_allclose(new.vector, rec.artifact.item_vectors[row], rtol=1e-4, atol=1e-5)
    assert new.bias == pytest.approx(float(rec.artifact.item_bias[row]), abs=1e-5)
    assert sum(new.attention.values()) == pytest.approx(1.0)
    text_only = rec.embed_new_item({"text": tiny_features["text"].matrix[row]})
    assert set(text_only.attention) == {"text"}


def test_new_item_rejects_unknown_modality_and_wrong_width(saved_model):
    rec = load_recommender(saved_model[0])
    with pytest.raises(RecommenderInputError) as err:
        rec.embed_new_item({"smell": np.zeros(3)})
    assert err.value.field == "features"
    with pytest.raises(RecommenderInputError) as err:
        rec.embed_new_item({"text": np.zeros(5)})
    assert err.value.field == "features.text"
    with pytest.raises(RecommenderInputError) as err:
        rec.embed_new_item({"text": np.full(16, np.nan)})
    assert err.value.field == "features.text"
    # a modality the system knows but this model does not use is ignored
    with_audio = rec.embed_new_item({"text": np.ones(16), "audio": np.ones(1024)})
    assert set(with_audio.attention) == {"text"}


def test_fold_in_recovers_a_known_users_taste(saved_model, tiny_ratings):
    rec = load_recommender(saved_model[0])
    a = rec.artifact
    user = tiny_ratings[tiny_ratings["user_id"] == 3]
    vector, bias = rec.fold_in(dict(zip(user["movie_id"], user["rating"])))
    assert vector.shape == (a.dim,)
    rows = [int(np.flatnonzero(a.movie_ids == m)[0]) for m in user["movie_id"]]
    folded = a.global_mean + bias + a.item_bias[rows] + a.item_vectors[rows] @ vector
    baseline = np.full(len(rows), a.global_mean) + a.item_bias[rows]
    # the folded-in user fits their own ratings better than the item-only prediction
    assert np.mean((folded - user["rating"]) ** 2) < np.mean((baseline - user["rating"]) ** 2)


def test_fold_in_rejects_empty_and_unknown(saved_model):
    rec = load_recommender(saved_model[0])
    with pytest.raises(RecommenderInputError):
        rec.fold_in({})
    with pytest.raises(RecommenderInputError):
        rec.fold_in({999999: 4.0})
