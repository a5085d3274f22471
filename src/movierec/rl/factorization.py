"""A quick biased matrix factorisation, fitted with full-batch Adam on a ratings table.

Two uses, kept apart on purpose:
- the *ranker fallback*: fitted on the TRAIN part of a split, it is a legitimate myopic greedy
  ranker when no fusion-model artifact has been published;
- the simulator's *oracle* (hidden taste): fitted on ALL of a user's ratings, never seen by a policy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from movierec.models.serving import ServingArtifact


def fit_biased_mf(
    ratings: pd.DataFrame,
    *,
    dim: int = 32,
    epochs: int = 300,
    lr: float = 0.03,
    weight_decay: float = 0.1,
    seed: int = 0,
    version: str = "mf",
    chunk_ratings: int = 1 << 21,
) -> ServingArtifact:
    """Fit ``rating ~ mean + b_u + b_i + p_u . q_i`` by minimising L2-regularised squared error.

    ``chunk_ratings``: ratings per backward pass of the (full-batch) gradient; memory, not the result.
    """
    gen = torch.Generator().manual_seed(seed)
    users, u_idx = np.unique(ratings["user_id"].to_numpy(np.int64), return_inverse=True)
    movies, m_idx = np.unique(ratings["movie_id"].to_numpy(np.int64), return_inverse=True)
    r = torch.tensor(ratings["rating"].to_numpy(np.float32))
    u = torch.tensor(u_idx, dtype=torch.long)
    m = torch.tensor(m_idx, dtype=torch.long)
    mean = float(r.mean())
    p = (0.05 * torch.randn(len(users), dim, generator=gen)).requires_grad_()
    q = (0.05 * torch.randn(len(movies), dim, generator=gen)).requires_grad_()
    bu = torch.zeros(len(users), requires_grad=True)
    bi = torch.zeros(len(movies), requires_grad=True)
    opt = torch.optim.Adam([p, q, bu, bi], lr=lr)
    n = len(r)
    # the full-batch gradient is summed over chunks of ratings, so memory stays a few chunk x dim
    # tensors (in one piece at ml-25m's 25M ratings they would take about 20 GB)
    chunks = [slice(start, start + chunk_ratings) for start in range(0, n, chunk_ratings)]
    # a bar in a terminal only (disable=None: off when stderr is not a TTY): a fit at ml-25m's size
    # runs for a long while on a CPU, and it is cached afterwards
    for _ in tqdm(range(epochs), desc=f"fit {version}", unit="epoch", disable=None, leave=False):
        opt.zero_grad()
        for c in chunks:
            uc, mc = u[c], m[c]
            pu, qi = p[uc], q[mc]
            pred = mean + bu[uc] + bi[mc] + (pu * qi).sum(1)
            # regularise per observed rating, so rare users and movies are pulled harder towards zero
            part = ((pred - r[c]) ** 2).sum() / n + weight_decay * (((pu**2).sum(1) + (qi**2).sum(1) + bu[uc] ** 2 + bi[mc] ** 2).sum() / n)
            part.backward()
        opt.step()
    return ServingArtifact(
        version=version,
        movie_ids=movies,
        item_vectors=q.detach().numpy(),
        item_bias=bi.detach().numpy(),
        user_ids=users,
        user_vectors=p.detach().numpy(),
        user_bias=bu.detach().numpy(),
        global_mean=mean,
        metadata={"model": "biased-mf", "dim": dim, "epochs": epochs, "weight_decay": weight_decay, "seed": seed, "ratings": len(ratings)},
    )


def predict_rating_matrix(artifact: ServingArtifact, user_ids: np.ndarray, movie_ids: np.ndarray) -> np.ndarray:
    """(users, movies) predicted ratings, as one matrix product; every id must be in the artifact."""
    u = np.searchsorted(artifact.user_ids, user_ids)
    m = np.searchsorted(artifact.movie_ids, movie_ids)
    return (artifact.global_mean + artifact.user_bias[u][:, None] + artifact.item_bias[m][None, :]
            + artifact.user_vectors[u] @ artifact.item_vectors[m].T)
