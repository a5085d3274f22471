"""Placing new movies among the warm ones at a share of their catalog quantile (hand-computed)."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from movierec.cli import app
from movierec.evaluation.new_movie_exposure import place_new_movies

# four warm movies (scores 5, 4, 3, 2) and two new ones (own scores 1.0 and 0.5)
SCORES = np.array([[5.0, 4.0, 3.0, 2.0, 1.0, 0.5]])
NEW = np.array([False, False, False, False, True, True])
ALL = np.ones((1, 6), bool)


def _order(scores: np.ndarray) -> list[int]:
    return np.argsort(-scores[0], kind="stable").tolist()


def test_share_one_places_new_movies_at_their_quantile_of_the_warm_scores():
    # w=4, c=2: the best new movie goes below warm rank floor(0.5*4/2)=1, the next below rank floor(1.5*4/2)=3
    placed = place_new_movies(SCORES, NEW, ALL, 1.0)
    assert _order(placed) == [0, 1, 4, 2, 3, 5]
    assert placed[0, 4] < 4.0 and placed[0, 4] > 3.0 and placed[0, 5] < 2.0
    assert np.array_equal(placed[0, :4], SCORES[0, :4])  # warm scores are untouched


def test_half_share_pushes_them_down_and_past_the_last_warm_movie_keeps_their_order():
    # ranks floor(0.5*4/1)=2 and floor(1.5*4/1)=6, which is past the last warm movie
    placed = place_new_movies(SCORES, NEW, ALL, 0.5)
    assert _order(placed) == [0, 1, 2, 4, 3, 5]
    assert placed[0, 5] < 2.0


def test_new_movies_keep_their_own_order_and_share_zero_changes_nothing():
    swapped = SCORES.copy()
    swapped[0, 4], swapped[0, 5] = 0.5, 1.0
    assert _order(place_new_movies(swapped, NEW, ALL, 1.0)) == [0, 1, 5, 2, 3, 4]
    assert np.array_equal(place_new_movies(SCORES, NEW, ALL, 0.0), SCORES)


def test_only_allowed_movies_count():
    allowed = ALL.copy()
    allowed[0, 1] = False  # the user already rated warm movie B: w=3 (5, 3, 2)
    placed = place_new_movies(SCORES, NEW, allowed, 1.0)
    # ranks floor(0.5*3/2)=0 and floor(1.5*3/2)=2: below A (5) and below D (2)
    assert 3.0 < placed[0, 4] < 5.0 and placed[0, 5] < 2.0
    assert placed[0, 1] == 4.0  # a disallowed movie's score is left for the caller to exclude


def test_cli_refuses_to_override_the_seed_it_sets():
    result = CliRunner().invoke(app, ["model", "validate-new-movies", "--set", "seed=3"])
    assert result.exit_code == 2 and "seed is set by the run itself" in " ".join(result.output.split())


def test_report_reads_each_share_against_the_served_ranking(tmp_path):
    from movierec.evaluation.new_movie_exposure import write_new_movie_exposure

    def cells(warm, new, both):
        return {name: {"recall@20": {"mean": v, "sd": 0.01}, "ndcg@20": {"mean": v / 2, "sd": None}}
                for name, v in (("warm", warm), ("new", new), ("all", both))}

    result = {"dataset": "d", "data_version": "v", "seeds": [0, 1], "shares": [0.0, 0.5], "wall_seconds": 60.0,
              "per_seed": {"0": {"modalities": ["text"], "new_movies": 10, "catalog": 100}},
              "summary": {"0.0": cells(0.40, 0.0, 0.20), "0.5": cells(0.36, 0.02, 0.19), "random": cells(0.01, 0.001, 0.005)}}
    _, md = write_new_movie_exposure(result, tmp_path, "movierec model validate-new-movies")
    text = md.read_text()
    assert "| share 0.5 | 0.3600 ± 0.0100 | 0.1800 |" in text and "| random order (reference) |" in text
    assert "- share 0.5: new-movie Recall@20 0.0200 (as served 0.0000); warm -10.0%, all -5.0% against share 0." in text
