"""Where new movies (no one rated them in the training data) go among the warm ones.

The served score ranks a new movie by its content alone, and by validation evidence such a movie
is a worse bet than the twentieth warm movie for nearly every user, so none reaches a top 20
(``movierec model validate-new-movies`` measures this and what the remedy costs). The remedy: the
new movie ranked ``r``-th among the allowed new ones (0-based, by its own score) goes just below
the warm movie of rank ``floor((r + 1/2) * warm / (new * share))``. ``share`` 1.0 gives new
movies top slots in proportion to their part of the allowed catalog, 0.5 half that; 0 is off.
The ranker (``ItemIndex.top_n``) and the validation (``place_new_movies``) both use this rule.
"""

from __future__ import annotations

import numpy as np


def new_movie_slots(n_warm: int, n_new: int, share: float) -> np.ndarray:
    """For each of the ``n_new`` new movies in their own order, the warm rank it goes just below
    (``>= n_warm``: below every warm movie). ``share`` must be positive."""
    if share <= 0:
        raise ValueError("share must be positive")
    return ((np.arange(n_new) + 0.5) * n_warm / (n_new * share)).astype(np.int64)
