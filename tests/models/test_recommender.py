from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from movierec.models.checkpoint import save_trained
from movierec.models.config import FusionConfig
from movierec.models.item_content import build_item_content
from movierec.models.recommender import RecommenderInputError, load_recommender
from movierec.models.serving import ServingArtifact
from movierec.models.training import train_fusion


@pytest.fixture
def saved_model(tmp_path, tiny_ratings, tiny_features, tiny_catalog_ids):
    content = build_item_content(tiny_features, tiny_catalog_ids, ["text", "poster"])
    trained = train_fusion(tiny_ratings, content, FusionConfig(epochs=3, content_epochs=3, dim=8, rank_dim=8, token_dim=8, heads=2, batch_size=64), progress=False)
    save_trained(trained, tmp_path / "fusion", "v1", {"data_version": "tiny"})
    return tmp_path / "fusion" / "current", trained


def test_artifact_scores_match_the_trained_model(saved_model):
    folder, trained = saved_model
    artifact = ServingArtifact.load(folder)
    tables = trained.item_tables()
    # served item vectors: the ranking head's, then the item-item term's part
    width = tables["rank_vector"].shape[1]
    np.testing.assert_allclose(artifact.item_vectors[:, :width], tables["rank_vector"], rtol=1e-6)
    np.testing.assert_array_equal(artifact.item_vectors[:, width:], trained.item_item.item)
    assert artifact.dim == trained.cfg.served_dim
    np.testing.assert_allclose(artifact.rating.item_vectors, tables["vector"], rtol=1e-6)
    # the artifact predicts with the rating head exactly as the trained network does
    u, i = trained.history_rows[:5], trained.history_cols[:5]
    net = trained.net
    expected = (trained.global_mean + net.user_bias.weight[u, 0] + torch.from_numpy(tables["bias"][i])
                + (net.user_vector.weight[u] * torch.from_numpy(tables["vector"][i])).sum(1)).detach().numpy()
    np.testing.assert_allclose(artifact.predict_rating(u, i), np.clip(expected, 0.5, 5.0), rtol=1e-5)
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


def test_fold_in_gives_a_new_user_what_training_gives_a_user_without_id(saved_model, tiny_ratings):
    folder, trained = saved_model
    rec = load_recommender(folder)
    user = tiny_ratings[tiny_ratings["user_id"] == 3]
    assert (user["rating"] >= 4).any() and (user["rating"] < 4).any()  # likes and dislikes, weighted apart
    vector, bias = rec.fold_in(dict(zip(user["movie_id"], user["rating"])))
    assert vector.shape == (rec.artifact.dim,) and bias == 0.0
    # the served vector of user 3 is their user embedding plus exactly this history part, in the
    # ranking head's columns and in the item-item term's (where a disliked movie counts for less)
    row = int(np.flatnonzero(trained.user_ids == 3)[0])
    id_part = np.zeros(rec.artifact.dim, np.float32)
    id_part[: trained.cfg.rank_dim] = trained.net.rank_user_vector.weight[row].detach().numpy()
    assert np.abs(vector[trained.cfg.rank_dim:]).max() > 0
    np.testing.assert_allclose(rec.artifact.user_vectors[row] - id_part, vector, rtol=1e-4, atol=1e-5)


def test_fold_in_rating_recovers_a_known_users_taste(saved_model, tiny_ratings):
    rec = load_recommender(saved_model[0])
    a, head = rec.artifact, rec.artifact.rating
    user = tiny_ratings[tiny_ratings["user_id"] == 3]
    vector, bias = rec.fold_in_rating(dict(zip(user["movie_id"], user["rating"])))
    assert vector.shape == (head.item_vectors.shape[1],)
    rows = [int(np.flatnonzero(a.movie_ids == m)[0]) for m in user["movie_id"]]
    folded = a.global_mean + bias + head.item_bias[rows] + head.item_vectors[rows] @ vector
    baseline = np.full(len(rows), a.global_mean) + head.item_bias[rows]
    # the folded-in user fits their own ratings better than the item-only prediction
    assert np.mean((folded - user["rating"]) ** 2) < np.mean((baseline - user["rating"]) ** 2)


def test_fold_in_rejects_empty_and_unknown(saved_model):
    rec = load_recommender(saved_model[0])
    with pytest.raises(RecommenderInputError):
        rec.fold_in({})
    with pytest.raises(RecommenderInputError):
        rec.fold_in({999999: 4.0})
    with pytest.raises(RecommenderInputError):
        rec.fold_in_rating({})


def test_a_checkpoint_from_another_model_version_is_a_clear_error(saved_model):
    import json

    from movierec.models.serving import ArtifactError

    folder = saved_model[0].parent / "checkpoints" / "v1"
    info = json.loads((folder / "checkpoint.json").read_text())
    info["config"]["batches_per_epoch"] = 8  # a key the old single-head model had
    (folder / "checkpoint.json").write_text(json.dumps(info))
    with pytest.raises(ArtifactError, match="another version of the model"):
        load_recommender(saved_model[0])


def test_a_checkpoint_written_before_a_setting_existed_loads_with_the_value_it_was_trained_with(saved_model):
    from movierec.models.checkpoint import load_checkpoint
    from movierec.models.config import TRAINED_BEFORE_FIELDS_EXISTED

    folder = saved_model[0].parent / "checkpoints" / "v1"
    assert load_checkpoint(folder).cfg.dislike_weight == 0.3  # written now: its own value
    info = json.loads((folder / "checkpoint.json").read_text())
    for name in TRAINED_BEFORE_FIELDS_EXISTED:
        del info["config"][name]
    (folder / "checkpoint.json").write_text(json.dumps(info))
    assert load_checkpoint(folder).cfg.dislike_weight == 1.0 != FusionConfig().dislike_weight


def test_a_checkpoint_from_before_the_item_item_history_weights_folds_in_as_it_was_trained(saved_model, tiny_ratings):
    folder, trained = saved_model
    info_path = folder.parent / "checkpoints" / "v1" / "checkpoint.json"
    info = json.loads(info_path.read_text())
    user = tiny_ratings[tiny_ratings["user_id"] == 3]
    ratings = dict(zip(user["movie_id"], user["rating"]))
    weighted, _ = load_recommender(folder).fold_in(ratings)
    del info["config"]["item_item_weighs_history"]
    info_path.write_text(json.dumps(info))
    rec = load_recommender(folder)
    assert rec.checkpoint.cfg.item_item_weighs_history is False
    unweighted, _ = rec.fold_in(ratings)
    width = trained.cfg.rank_dim
    np.testing.assert_allclose(unweighted[:width], weighted[:width], rtol=1e-6)
    rows = [int(np.flatnonzero(trained.movie_ids == m)[0]) for m in ratings]
    np.testing.assert_allclose(unweighted[width:], trained.item_item.history[rows].sum(axis=0), rtol=1e-4, atol=1e-6)
    assert not np.allclose(unweighted[width:], weighted[width:])
