"""The fusion network: two collaborative heads and a content encoder that speaks for new movies.

- **Rating head** (RMSE): ``global_mean + b_u + b_i + p_u . q_i``, biased matrix factorisation.
- **Ranking head** (top-K, what the ranker serves): ``r_u . s_i + c_i`` trained with a full
  softmax over the catalog; the user side is a user embedding plus the normalised sum of history
  embeddings of the movies the user rated, so a brand-new user is served from their history alone.
  The served vectors add a closed-form item-item term of the rated history beside it
  (``movierec.models.item_item``, fitted after training; not a parameter of this network).
- **Content encoder**: modality tokens -> Transformer -> attention pooling, projected to both
  heads' item vectors and biases. Missing modalities are masked, never zero-filled as present.

An item's served vectors blend its ID part with its content part by how much evidence it has:
``(n * id + kappa * content) / (n + kappa)`` for an item with ``n`` training ratings, so a movie no
one rated is content only and a popular one is mostly its learned ID vectors.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from movierec.models.config import FusionConfig


class ContentOut(NamedTuple):
    """Per item: rating vector (n, dim) and bias (n,), ranking vector (n, rank_dim) and bias (n,),
    attention over modalities (n, M)."""

    vector: torch.Tensor
    bias: torch.Tensor
    rank_vector: torch.Tensor
    rank_bias: torch.Tensor
    attention: torch.Tensor


class ModalityEncoder(nn.Module):
    """Fuses the present modalities of each item; missing ones are masked, not zero-filled."""

    def __init__(self, dims: list[int], cfg: FusionConfig):
        super().__init__()
        t = cfg.token_dim
        self.project = nn.ModuleList(nn.Sequential(nn.Linear(d, t), nn.LayerNorm(t)) for d in dims)
        # dropout on the small tokens, not on the wide inputs: the same regularisation at a
        # fraction of the cost on a CPU
        self.token_dropout = nn.Dropout(cfg.dropout)
        self.modality_type = nn.Parameter(torch.randn(len(dims), t) * 0.02)
        layer = nn.TransformerEncoderLayer(t, cfg.heads, 2 * t, 0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.pool_key = nn.Linear(t, t)
        self.pool_query = nn.Parameter(torch.randn(t) * 0.02)
        self.to_vector = nn.Linear(t, cfg.dim)
        self.to_bias = nn.Linear(t, 1)
        self.to_rank_vector = nn.Linear(t, cfg.rank_dim)
        self.to_rank_bias = nn.Linear(t, 1)

    def forward(self, inputs: list[torch.Tensor], mask: torch.Tensor) -> ContentOut:
        """An item with no modality at all gets zero vectors, zero biases and zero attention."""
        tokens = self.token_dropout(torch.stack([proj(x) for proj, x in zip(self.project, inputs)], dim=1)) + self.modality_type
        any_present = mask.any(dim=1)
        # a row with every token masked would make attention NaN: let it see its first token,
        # then zero its outputs below
        visible = mask.clone()
        visible[~any_present, 0] = True
        hidden = self.encoder(tokens, src_key_padding_mask=~visible)
        logits = torch.tanh(self.pool_key(hidden)) @ self.pool_query
        attention = torch.softmax(logits.masked_fill(~visible, float("-inf")), dim=1)
        pooled = (attention.unsqueeze(-1) * hidden).sum(dim=1)
        present = any_present.to(pooled.dtype)
        return ContentOut(
            self.to_vector(pooled) * present[:, None], self.to_bias(pooled).squeeze(-1) * present,
            self.to_rank_vector(pooled) * present[:, None], self.to_rank_bias(pooled).squeeze(-1) * present,
            attention * present[:, None],
        )


def _embedding(n: int, dim: int, std: float) -> nn.Embedding:
    e = nn.Embedding(n, dim)
    if std > 0:
        nn.init.normal_(e.weight, std=std)
    else:
        nn.init.zeros_(e.weight)
    return e


class FusionNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, dims: list[int], cfg: FusionConfig):
        super().__init__()
        self.cfg = cfg
        # rating head
        self.user_vector = _embedding(n_users, cfg.dim, 0.1)
        self.user_bias = _embedding(n_users, 1, 0.0)
        self.item_vector = _embedding(n_items, cfg.dim, 0.1)
        self.item_bias = _embedding(n_items, 1, 0.0)
        # ranking head
        self.rank_user_vector = _embedding(n_users, cfg.rank_dim, 0.05)
        self.rank_item_vector = _embedding(n_items, cfg.rank_dim, 0.05)
        self.rank_item_bias = _embedding(n_items, 1, 0.0)
        self.history_vector = _embedding(n_items, cfg.rank_dim, 0.05) if cfg.use_history else None
        self.content = ModalityEncoder(dims, cfg) if dims else None

    def rank_user_side(self, history: torch.Tensor | None, users: torch.Tensor | None = None,
                       user_keep: torch.Tensor | None = None) -> torch.Tensor:
        """Ranking-head user vectors: user embedding (times ``user_keep``) plus history embeddings.

        ``history`` is the (users, items) normalised rated-matrix of ``users`` (every user if None).
        """
        p = self.rank_user_vector.weight if users is None else self.rank_user_vector(users)
        if user_keep is not None:
            p = p * user_keep[:, None]
        if self.history_vector is not None and history is not None:
            h = torch.sparse.mm(history, self.history_vector.weight) if history.is_sparse else history @ self.history_vector.weight
            p = p + h
        return p
