from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from movierec.cli import app
from movierec.evaluation import peers
from movierec.evaluation.protocol import rating_metrics, topk_metrics


@pytest.mark.parametrize("name", ["implicit_als", "implicit_bpr", "cornac_bpr", "cornac_ease"])
def test_ranking_peers_score_only_movies_they_saw(name, tiny_ratings, tiny_catalog_ids):
    scorer = peers.fit_implicit(name, tiny_ratings, 0) if name.startswith("implicit") else peers.fit_cornac(name, tiny_ratings, 0)
    scores = scorer.rank_scores(np.array([1, 2]), tiny_catalog_ids)
    unseen = ~np.isin(tiny_catalog_ids, tiny_ratings["movie_id"].unique())
    assert scores.shape == (2, len(tiny_catalog_ids))
    assert np.all(np.isneginf(scores[:, unseen])) and np.isfinite(scores[:, ~unseen]).all()
    m = topk_metrics(scorer, tiny_ratings.iloc[::2], tiny_ratings.iloc[1::2], tiny_catalog_ids, k=5)
    assert 0.0 <= m["recall@5"] <= 1.0


def test_ease_scores_are_the_users_ratings_times_its_item_item_weights():
    """Cornac's EASE, reordered to our ids: a user's scores are their rating row times B, by hand."""
    import pandas as pd

    train = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3, 3], "movie_id": [10, 20, 20, 30, 10, 20, 30],
                          "rating": [5.0, 3.0, 4.0, 2.0, 1.0, 4.0, 5.0]})
    scorer = peers.fit_cornac("cornac_ease", train, 0)
    x = np.array([[5.0, 3.0, 0.0], [0.0, 4.0, 2.0], [1.0, 4.0, 5.0]])  # users 1, 2, 3 x movies 10, 20, 30
    g = x.T @ x + 500 * np.eye(3)
    p = np.linalg.inv(g)
    b = p / -np.diag(p)
    np.fill_diagonal(b, 0.0)
    b[b < 0] = 0.0
    scores = scorer.rank_scores(np.array([3, 1]), np.array([30, 10, 20, 40]))
    np.testing.assert_allclose(scores[:, :3], (x[[2, 0]] @ b)[:, [2, 0, 1]], rtol=1e-6)
    assert np.isneginf(scores[:, 3]).all()


def test_vbpr_uses_poster_vectors(tiny_ratings, tiny_features):
    poster = tiny_features["poster"]
    scorer = peers.fit_cornac("cornac_vbpr", tiny_ratings, 0, poster=(poster.movie_ids[poster.mask], poster.matrix[poster.mask]))
    assert np.isfinite(scorer.rank_scores(np.array([1]), np.array([100, 101]))).all()


@pytest.mark.parametrize("name", ["surprise_baselineonly", "surprise_svd"])
def test_surprise_peers_predict_on_the_rating_scale(name, tiny_ratings):
    m = rating_metrics(peers.fit_surprise(name, tiny_ratings, 0), tiny_ratings.iloc[:20])
    assert 0.0 < m["rmse"] < 2.0


def test_popularity_and_content_nn(tiny_ratings, tiny_features, tiny_catalog_ids):
    pop = peers.Popularity(tiny_ratings).rank_scores(np.array([1]), tiny_catalog_ids)[0]
    counts = tiny_ratings["movie_id"].value_counts()
    assert pop[list(tiny_catalog_ids).index(counts.index[0])] == counts.iloc[0]
    text = tiny_features["text"]
    nn = peers.ContentNearestNeighbour(tiny_ratings, text.movie_ids, text.matrix, text.mask)
    liked = tiny_ratings[(tiny_ratings["user_id"] == 1) & (tiny_ratings["rating"] >= 4)]["movie_id"]
    if len(liked):
        scores = nn.rank_scores(np.array([1]), tiny_catalog_ids)[0]
        # a liked movie is at least as similar to the profile as the average movie
        assert scores[list(tiny_catalog_ids).index(int(liked.iloc[0]))] > scores.mean()


def test_cli_errors_are_one_line_with_exit_code_2():
    runner = CliRunner()
    result = runner.invoke(app, ["model", "train", "--model", "nope"])
    assert result.exit_code == 2
    assert "unknown model 'nope'; known: fusion, mf, content" in result.output
    result = runner.invoke(app, ["model", "validate", "--set", "lr"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output
    assert "Traceback" not in result.output


def test_fit_peer_applies_overrides_on_top_of_the_peer_settings(tiny_ratings, tiny_features):
    assert peers.peer_settings("cornac_bpr", {"max_iter": 3})["max_iter"] == 3
    assert peers.peer_settings("cornac_bpr", {"max_iter": 3})["k"] == peers.PEER_SETTINGS["cornac_bpr"]["k"]
    fitted = peers.fit_peer("implicit_als", tiny_ratings, 0, tiny_features, {"factors": 6})
    assert fitted.model.user_factors.shape[1] == 6
    assert isinstance(peers.fit_peer("global_mean", tiny_ratings, 0, {}), peers.GlobalMean)
    with pytest.raises(ValueError, match="needs poster features"):
        peers.fit_peer("cornac_vbpr", tiny_ratings, 0, {})
    assert peers.fit_peer("surprise_svd", tiny_ratings, 0, {}, {"n_factors": 3}).algo.n_factors == 3
    with pytest.raises(ValueError, match="popularity takes no settings"):
        peers.fit_peer("popularity", tiny_ratings, 0, {}, {"k": 3})


@pytest.mark.parametrize("args, message", [
    (["no_such_peer"], "unknown peer 'no_such_peer'"),
    (["cornac_bpr", "--set", "no_such_setting=1"], "cornac_bpr:"),
])
def test_validate_peer_names_what_is_wrong(args, message, tmp_path, monkeypatch):
    from movierec.settings import get_settings

    monkeypatch.setenv("MOVIEREC_HOME", str(tmp_path))  # the split it cuts goes to a temp folder
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["model", "validate-peer", *args])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and message in " ".join(result.output.split())
