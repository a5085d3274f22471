"""The fusion network: modality tokens -> Transformer -> attention pooling -> item vector.

Scores are always ``global_mean + b_u + b_i + p_u . q_i`` so the ranker serves them as one matrix
product. The item side ``q_i, b_i`` is the content vector of its modalities plus, for items seen
in training, an ID embedding and bias; the user side ``p_u, b_u`` is a user embedding plus the
normalised sum of history embeddings of the movies the user rated.
"""

from __future__ import annotations

import torch
from torch import nn

from movierec.models.config import FusionConfig


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

    def forward(self, inputs: list[torch.Tensor], mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Content vectors (n, dim), content biases (n,) and attention over modalities (n, M).

        An item with no modality at all gets a zero vector, zero bias and zero attention.
        """
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
        vector = self.to_vector(pooled) * present[:, None]
        bias = self.to_bias(pooled).squeeze(-1) * present
        return vector, bias, attention * present[:, None]


class FusionNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, dims: list[int], cfg: FusionConfig):
        super().__init__()
        self.cfg = cfg
        self.user_vector = nn.Embedding(n_users, cfg.dim)
        self.user_bias = nn.Embedding(n_users, 1)
        nn.init.normal_(self.user_vector.weight, std=0.05)
        nn.init.zeros_(self.user_bias.weight)
        self.item_vector = self.item_bias = self.history_vector = None
        if cfg.use_item_ids:
            self.item_vector = nn.Embedding(n_items, cfg.dim)
            self.item_bias = nn.Embedding(n_items, 1)
            nn.init.normal_(self.item_vector.weight, std=0.05)
            nn.init.zeros_(self.item_bias.weight)
        if cfg.use_history:
            self.history_vector = nn.Embedding(n_items, cfg.dim)
            nn.init.normal_(self.history_vector.weight, std=0.01)
        self.content = ModalityEncoder(dims, cfg) if dims else None
        self.log_rank_scale = nn.Parameter(torch.tensor(1.0))

    def item_side(self, inputs: list[torch.Tensor], mask: torch.Tensor, id_keep: torch.Tensor,
                  content: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Item vectors, biases and modality attention for every item; ``id_keep`` gates the ID part.

        ``content`` reuses an already computed (vector, bias, attention) of the content encoder.
        """
        n = id_keep.shape[0]
        q = torch.zeros(n, self.cfg.dim, device=id_keep.device)
        b = torch.zeros(n, device=id_keep.device)
        attention = None
        if content is not None:
            q, b, attention = content
        elif self.content is not None:
            q, b, attention = self.content(inputs, mask)
        if self.item_vector is not None:
            q = q + id_keep[:, None] * self.item_vector.weight
            b = b + id_keep * self.item_bias.weight.squeeze(-1)
        return q, b, attention

    def user_side(self, history: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """User vectors and biases; ``history`` is the (users, items) sparse normalised rated-matrix."""
        p = self.user_vector.weight
        if self.history_vector is not None and history is not None:
            p = p + torch.sparse.mm(history, self.history_vector.weight)
        return p, self.user_bias.weight.squeeze(-1)

    @property
    def rank_scale(self) -> torch.Tensor:
        return self.log_rank_scale.exp()
