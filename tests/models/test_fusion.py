from __future__ import annotations

import numpy as np
import pytest
import torch

from movierec.models.config import FusionConfig
from movierec.models.fusion import ModalityEncoder
from movierec.models.item_content import build_item_content
from movierec.models.registry import REGISTRY, ModelConfigError, get_model, resolve_modalities, train_model


def test_masked_modality_content_does_not_change_the_output():
    torch.manual_seed(0)
    enc = ModalityEncoder([6, 4, 5], FusionConfig(token_dim=8, heads=2, dim=4)).eval()
    inputs = [torch.randn(3, 6), torch.randn(3, 4), torch.randn(3, 5)]
    mask = torch.tensor([[True, False, True], [True, True, True], [False, False, False]])
    v1, b1, r1, rb1, a1 = enc(inputs, mask)
    changed = [inputs[0].clone(), inputs[1] * 100 + 7, inputs[2].clone()]
    changed[2][2] = 42.0  # item 2 has nothing present at all
    v2, b2, r2, rb2, a2 = enc(changed, mask)
    torch.testing.assert_close(v1[0], v2[0])
    torch.testing.assert_close(b1[0], b2[0])
    torch.testing.assert_close(r1[0], r2[0])
    torch.testing.assert_close(rb1[0], rb2[0])
    assert a1[0, 1] == 0 and torch.isclose(a1[0].sum(), torch.tensor(1.0))
    # item 1 has modality 1 present: changing it must change its output (the mask is what protects item 0)
    assert not torch.allclose(v1[1], v2[1])
    # an item with no modality gets a zero vector, zero bias and no attention, never NaN
    assert torch.all(v1[2] == 0) and b1[2] == 0 and torch.all(r1[2] == 0) and rb1[2] == 0 and torch.all(a1[2] == 0)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ModelConfigError, match="known: fusion, mf, content"):
        get_model("svd")


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ModelConfigError, match="epoch"):
        get_model("fusion").config({"epoch": 3})
    with pytest.raises(ModelConfigError, match="dim"):
        get_model("fusion").config({"dim": 0})


def test_models_declare_their_data():
    assert REGISTRY["mf"].requires == frozenset({"ratings"})
    assert "features" in REGISTRY["fusion"].requires


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_registered_model_trains_one_step_on_tiny_data(name, tiny_ratings, tiny_features, tiny_catalog_ids):
    spec = get_model(name)
    cfg = spec.config({"epochs": 1, "content_epochs": 1, "batch_size": 1000, "rank_users_per_step": 100, "dim": 4, "rank_dim": 6,
                       "token_dim": 8, "heads": 2})
    trained = train_model(spec, cfg, tiny_ratings, tiny_catalog_ids, tiny_features, progress=False)
    after = trained.net.state_dict()
    assert len(trained.curves["train_rmse"]) == 1 and np.isfinite(trained.curves["train_rmse"][0])
    art = trained.export("t", {})
    # served width: the ranking head's 6, then the item-item term's default 256 (none for mf and content)
    assert art.item_vectors.shape == (len(tiny_catalog_ids), cfg.served_dim) and art.rating.item_vectors.shape == (len(tiny_catalog_ids), 4)
    assert cfg.served_dim == (6 if name in ("mf", "content") else 6 + 256)
    assert np.isfinite(art.item_vectors).all() and np.isfinite(art.user_vectors).all()
    assert art.item_rated.tolist() == np.isin(tiny_catalog_ids, tiny_ratings["movie_id"]).tolist()  # the 5 cold ones are new
    # the one step moved the parameters away from their initialisation
    torch.manual_seed(cfg.seed)  # train_fusion seeds the same way before building the net
    initial = type(trained.net)(len(trained.user_ids), len(tiny_catalog_ids), trained.content.dims, cfg).state_dict()
    assert not torch.equal(initial["user_vector.weight"], after["user_vector.weight"])
    assert not torch.equal(initial["rank_item_vector.weight"], after["rank_item_vector.weight"])
    if trained.net.content is not None:
        assert not torch.equal(initial["content.to_rank_vector.weight"], after["content.to_rank_vector.weight"])
    # movies no one rated have no ID part: content only (or nothing, for ID-only MF)
    cold = ~trained.has_id
    if name == "mf":
        assert np.all(art.item_vectors[cold] == 0)
    else:
        assert np.any(art.item_vectors[cold] != 0)


def test_item_content_standardises_and_reduces_wide_modalities(tiny_features, tiny_catalog_ids):
    content = build_item_content(tiny_features, tiny_catalog_ids, ["text", "poster"])
    text = content.matrices[0]
    np.testing.assert_allclose(text.mean(axis=0), 0, atol=1e-5)
    poster_mask = content.masks[:, 1]
    assert np.all(content.matrices[1][~poster_mask] == 0)
    with pytest.raises(Exception, match="audio"):
        build_item_content(tiny_features, tiny_catalog_ids, ["audio"])


def test_ablation_rows_can_share_one_collaborative_stage(tiny_ratings, tiny_features, tiny_catalog_ids):
    spec = get_model("fusion")
    small = {"epochs": 2, "content_epochs": 2, "dim": 4, "rank_dim": 4, "token_dim": 8, "heads": 2, "batch_size": 64}
    both = train_model(spec, spec.config({**small, "modalities": ["text", "poster"]}), tiny_ratings, tiny_catalog_ids, tiny_features, progress=False)
    text = train_model(spec, spec.config({**small, "modalities": ["text"]}), tiny_ratings, tiny_catalog_ids, tiny_features,
                       progress=False, collaborative=both)
    for part in ("user_vector", "item_vector", "rank_item_vector", "history_vector"):
        assert torch.equal(getattr(both.net, part).weight, getattr(text.net, part).weight)
    assert text.content.names == ["text"]
    # a reused stage gives the very model a full run gives (the content stage has its own random streams)
    again = train_model(spec, spec.config({**small, "modalities": ["text", "poster"]}), tiny_ratings, tiny_catalog_ids, tiny_features,
                        progress=False, collaborative=text)
    np.testing.assert_array_equal(again.export("a", {}).item_vectors, both.export("b", {}).item_vectors)
    with pytest.raises(ValueError, match="other ratings or settings"):
        train_model(spec, spec.config({**small, "dim": 6}), tiny_ratings, tiny_catalog_ids, tiny_features, progress=False, collaborative=both)


def test_served_items_blend_id_and_content_by_evidence():
    from movierec.models.training import evidence_weight

    np.testing.assert_allclose(evidence_weight(np.array([0, 10, 90]), 10.0), [0.0, 0.5, 0.9])
    np.testing.assert_allclose(evidence_weight(np.array([0, 3]), 0.0), [0.0, 1.0])


def test_default_modalities_are_the_stores_but_an_explicit_list_is_strict():
    store = {"text": None, "trailer_avf": None, "trailer_ivector": None}  # no poster built
    assert resolve_modalities(FusionConfig(), store) == ["text", "trailer_avf", "trailer_ivector"]
    assert resolve_modalities(FusionConfig(modalities=["trailer_ivector"]), store) == ["trailer_ivector"]
    with pytest.raises(ModelConfigError, match="poster"):
        resolve_modalities(FusionConfig(modalities=["text", "poster"]), store)


def test_a_trained_model_records_the_modalities_it_fused(tiny_ratings, tiny_catalog_ids, tiny_features):
    """The default (every modality in the store; this store holds text and poster) is what the saved config names."""
    small = {"epochs": 1, "content_epochs": 1, "dim": 4, "rank_dim": 4, "token_dim": 4, "heads": 1}
    trained = train_model(get_model("fusion"), FusionConfig(**small), tiny_ratings, tiny_catalog_ids, tiny_features, progress=False)
    assert trained.cfg.modalities == ["text", "poster"] and trained.content.names == ["text", "poster"]
    id_only = train_model(get_model("mf"), get_model("mf").config(small), tiny_ratings, tiny_catalog_ids, tiny_features,
                          progress=False)
    assert id_only.cfg.modalities == []


def test_the_ranking_loss_counts_a_disliked_movie_by_its_target_weight():
    from movierec.models.fusion import FusionNet
    from movierec.models.training import _rank_step

    cfg = FusionConfig(modalities=[], dim=4, rank_dim=3, history_dropout=0.0, user_id_dropout=0.0)
    torch.manual_seed(0)
    net = FusionNet(2, 5, [], cfg)
    rated = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0, 1.0]])
    target = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.5, 1.0]])  # movie 1 of user 0 disliked, weight 0; 3 of user 1 at 0.5
    users = torch.tensor([0, 1])
    history = rated / rated.sum(1, keepdim=True).sqrt()
    logits = net.rank_user_side(history, users) @ net.rank_item_vector.weight.T + net.rank_item_bias.weight[:, 0]
    lp = torch.log_softmax(logits, dim=1)
    expected = -(lp[0, 0] + (lp[1, 2] + 0.5 * lp[1, 3] + lp[1, 4]) / 2.5) / 2
    torch.testing.assert_close(_rank_step(net, cfg, rated, target, users), expected)
    # with every rated movie at weight 1 it is the plain loss over the rated movies
    plain = -((lp * rated).sum(1) / rated.sum(1)).mean()
    torch.testing.assert_close(_rank_step(net, cfg, rated, rated, users), plain)


def test_ranking_rows_are_the_dense_rows_of_the_rated_and_target_matrices():
    """Training keeps them sparse (a dense pair would not fit at ml-25m's size); a step's rows are
    the dense matrices' rows, and a (user, movie) pair given twice counts once, with its last target."""
    from movierec.models.training import RankingRows

    users = np.array([0, 0, 2, 1, 2, 0])
    movies = np.array([1, 3, 0, 3, 4, 1])
    target = np.array([0.3, 1.0, 1.0, 0.3, 1.0, 1.0])  # (0, 1) given twice: 0.3 then 1.0
    rows = RankingRows.of(users, movies, target, 3, 5, torch.device("cpu"))
    rated, weights = rows.rows(np.array([2, 0]))
    torch.testing.assert_close(rated, torch.tensor([[1.0, 0, 0, 0, 1], [0, 1, 0, 1, 0]]))
    torch.testing.assert_close(weights, torch.tensor([[1.0, 0, 0, 0, 1], [0, 1, 0, 1, 0]]))
    rated, weights = rows.rows(np.array([1]))
    torch.testing.assert_close(rated, torch.tensor([[0.0, 0, 0, 1, 0]]))
    torch.testing.assert_close(weights, torch.tensor([[0.0, 0, 0, 0.3, 0]]))


def test_dislike_weight_reaches_both_ranking_parts(tiny_ratings, tiny_features, tiny_catalog_ids):
    spec = get_model("fusion")
    base = {"epochs": 1, "content_epochs": 1, "batch_size": 1000, "rank_users_per_step": 100, "dim": 4, "rank_dim": 6, "token_dim": 8,
            "heads": 2, "item_item_rank": 8}
    assert (tiny_ratings["rating"] < 4).any() and (tiny_ratings["rating"] >= 4).any()
    models = [train_model(spec, spec.config({**base, "dislike_weight": w}), tiny_ratings, tiny_catalog_ids, tiny_features, progress=False)
              for w in (1.0, 0.0)]
    plain, liked_only = (m.net.state_dict()["rank_item_vector.weight"] for m in models)
    assert not torch.equal(plain, liked_only)
    assert not np.allclose(models[0].item_item.item, models[1].item_item.item)
    # the rating head does not see it
    torch.testing.assert_close(models[0].net.state_dict()["user_vector.weight"], models[1].net.state_dict()["user_vector.weight"])
