"""New movies given a share of the top slots: the ranker's index follows the same rule as the
validation that measures it, knows which movies are new, and leaves ranking alone at share 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from movierec.contracts.ranker import AddItemRequest, TopNRequest
from movierec.evaluation.new_movie_exposure import place_new_movies
from movierec.models.serving import ArtifactError, ServingArtifact
from movierec.serving.item_index import ItemIndex
from movierec.serving.ranker import Ranker


def _index(scores: np.ndarray, new: np.ndarray) -> ItemIndex:
    """One-dimensional vectors: a user vector [1] scores each movie exactly ``scores``."""
    vectors = torch.from_numpy(scores.astype(np.float32)[:, None])
    return ItemIndex("v", np.arange(1, len(scores) + 1), vectors, torch.zeros(len(scores)), ["text"], None, new)


def test_hand_computed_placement():
    index = _index(np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.5]), np.array([0, 0, 0, 0, 1, 1], bool))
    one = np.ones(1, np.float32)
    # as served: new movies last; share 1.0: below warm ranks 1 and 3; share 0.5: below rank 2, then below all
    assert [s.movie_id for s in index.top_n(one, 6)] == [1, 2, 3, 4, 5, 6]
    placed = index.top_n(one, 6, new_share=1.0)
    assert [s.movie_id for s in placed] == [1, 2, 5, 3, 4, 6]
    assert 3.0 < placed[2].score < 4.0  # the score it is placed at, not its own 1.0
    assert [s.movie_id for s in index.top_n(one, 6, new_share=0.5)] == [1, 2, 3, 5, 4, 6]
    assert [s.movie_id for s in index.top_n(one, 3, new_share=1.0)] == [1, 2, 5]


@pytest.mark.parametrize("share", [0.25, 1.0, 3.0])
def test_index_and_validation_place_new_movies_alike(share):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=200)
    new = rng.random(200) < 0.15
    index = _index(scores, new)
    for trial in range(5):
        allowed = rng.random(200) < 0.8
        top = [s.movie_id - 1 for s in index.top_n(np.ones(1, np.float32), 20, allowed, new_share=share)]
        placed = place_new_movies(scores.astype(np.float32)[None, :].astype(np.float64), new, allowed[None, :], share)[0]
        placed[~allowed] = -np.inf
        expected = np.argsort(-placed, kind="stable")[:20].tolist()
        assert top == expected, trial


def test_artifact_records_which_movies_were_rated_and_the_index_reads_it(tmp_path):
    art = ServingArtifact("v", [1, 2, 3], np.eye(3, dtype=np.float32), np.zeros(3), [7], np.ones((1, 3)), np.zeros(1), 3.5,
                          item_rated=np.array([True, False, True]))
    art.save(tmp_path / "a")
    loaded = ServingArtifact.load(tmp_path / "a")
    assert loaded.item_rated.tolist() == [True, False, True]
    assert ItemIndex.from_artifact(loaded, torch.device("cpu")).new.tolist() == [False, True, False]
    with pytest.raises(ArtifactError, match="item_rated"):
        ServingArtifact("v", [1, 2, 3], np.eye(3, dtype=np.float32), np.zeros(3), [7], np.ones((1, 3)), np.zeros(1), 3.5,
                        item_rated=np.array([True]))


def test_added_movies_are_new_and_the_ranker_passes_its_share(catalog, model_folder, text_dim):
    ranker = Ranker(catalog=catalog, device=torch.device("cpu"), new_movie_share=1.0)
    ranker.load(model_folder)
    unrated = int(ranker.model.index.new.sum())  # catalog movies no one rated in the test model's training data
    text = np.random.default_rng(3).normal(size=text_dim).astype(np.float32)
    ranker.add_item(AddItemRequest(movie_id=500001, title="Brand New (2026)", year=2026, genres=["Sci-Fi"], features={"text": text.tolist()}))
    index = ranker.model.index
    assert index.new[index.position(500001)] and index.new.sum() == unrated + 1
    user = ranker.model.recommender.artifact.user_vectors[0]
    # the best new movie goes just below warm rank floor(0.5 * warm / new)
    new_count = unrated + 1
    slot = int(0.5 * (len(index) - new_count) / new_count)
    got = [s.movie_id for s in ranker.top_n(TopNRequest(user_vector=user.tolist(), k=slot + 5)).items]
    assert got == [s.movie_id for s in index.top_n(user, slot + 5, new_share=1.0)]
    assert [i for i, m in enumerate(got) if index.new[index.position(m)]][0] == slot + 1
