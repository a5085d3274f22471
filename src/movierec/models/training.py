"""Training the fusion network on a ratings table, and exporting what it learned.

Each epoch shuffles the training ratings into a few large minibatches and the users into as many
groups. Every step scores the whole catalog, so the ranking loss is a full softmax: for each
user of the step's group, each movie they rated should outscore every other movie. The content
encoder (the expensive part on a CPU) runs with gradients on the first step of an epoch; the
other steps reuse its output and update only the ID embeddings, which keeps training to minutes
on two CPU cores.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from movierec.models.config import FusionConfig
from movierec.models.fusion import FusionNet
from movierec.models.item_content import ItemContent
from movierec.models.serving import ServingArtifact

def pick_device(cfg: FusionConfig) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


@dataclass
class TrainedFusion:
    net: FusionNet
    cfg: FusionConfig
    content: ItemContent
    user_ids: np.ndarray
    has_id: np.ndarray
    global_mean: float
    history_rows: np.ndarray
    history_cols: np.ndarray
    curves: dict[str, list[float]] = field(default_factory=dict)
    train_seconds: float = 0.0

    @property
    def movie_ids(self) -> np.ndarray:
        return self.content.movie_ids

    def _device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def item_side(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        self.net.eval()
        dev = self._device()
        inputs = [torch.from_numpy(m).to(dev) for m in self.content.matrices]
        q, b, att = self.net.item_side(inputs, torch.from_numpy(self.content.masks).to(dev), torch.from_numpy(self.has_id.astype(np.float32)).to(dev))
        return q.cpu().numpy(), b.cpu().numpy(), (att.cpu().numpy() if att is not None else None)

    @torch.no_grad()
    def user_side(self) -> tuple[np.ndarray, np.ndarray]:
        self.net.eval()
        p, b = self.net.user_side(history_matrix(self.history_rows, self.history_cols, len(self.user_ids), len(self.movie_ids), self._device()))
        return p.cpu().numpy(), b.cpu().numpy()

    def export(self, version: str, metadata: dict) -> ServingArtifact:
        q, bi, att = self.item_side()
        p, bu = self.user_side()
        return ServingArtifact(
            version=version, movie_ids=self.movie_ids, item_vectors=q, item_bias=bi, user_ids=self.user_ids,
            user_vectors=p, user_bias=bu, global_mean=self.global_mean, modality_names=list(self.content.names),
            modality_attention=att, metadata=metadata,
        )


def history_matrix(rows: np.ndarray, cols: np.ndarray, n_users: int, n_items: int, device: torch.device) -> torch.Tensor:
    """Sparse (users, items) with 1/sqrt(|N(u)|) at each rated movie."""
    counts = np.bincount(rows, minlength=n_users).astype(np.float32)
    values = 1.0 / np.sqrt(np.maximum(counts[rows], 1.0))
    idx = torch.from_numpy(np.stack([rows, cols]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.from_numpy(values), (n_users, n_items), check_invariants=False).coalesce().to(device)


def index_ratings(ratings: pd.DataFrame, user_ids: np.ndarray, movie_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions of users and movies (-1 where unknown) and ratings as float32."""
    u = np.searchsorted(user_ids, ratings["user_id"].to_numpy())
    u = np.where((u < len(user_ids)) & (user_ids[np.minimum(u, len(user_ids) - 1)] == ratings["user_id"].to_numpy()), u, -1)
    order = np.argsort(movie_ids)
    pos = np.searchsorted(movie_ids, ratings["movie_id"].to_numpy(), sorter=order)
    pos = np.minimum(pos, len(movie_ids) - 1)
    i = order[pos]
    i = np.where(movie_ids[i] == ratings["movie_id"].to_numpy(), i, -1)
    return u.astype(np.int64), i.astype(np.int64), ratings["rating"].to_numpy(np.float32)


def train_fusion(
    train: pd.DataFrame, content: ItemContent, cfg: FusionConfig, valid: pd.DataFrame | None = None, progress: bool = True,
) -> TrainedFusion:
    """Fit on ``train`` (user_id, movie_id, rating); ``valid`` only feeds the learning curve."""
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = pick_device(cfg)
    user_ids = np.unique(train["user_id"].to_numpy())
    movie_ids = content.movie_ids
    u, i, r = index_ratings(train, user_ids, movie_ids)
    if (i < 0).any():
        raise ValueError(f"{int((i < 0).sum())} training ratings are of movies outside the item content table")
    n_users, n_items = len(user_ids), len(movie_ids)
    has_id = np.zeros(n_items, bool)
    has_id[i] = True
    global_mean = float(r.mean())

    net = FusionNet(n_users, n_items, content.dims, cfg).to(device)
    id_params = [p for n, p in net.named_parameters() if n.split(".")[0] in ("user_vector", "user_bias", "item_vector", "item_bias", "history_vector")]
    other = [p for n, p in net.named_parameters() if n.split(".")[0] not in ("user_vector", "user_bias", "item_vector", "item_bias", "history_vector")]
    opt = torch.optim.AdamW([{"params": id_params, "weight_decay": 0.0}, {"params": other, "weight_decay": 1e-4}], lr=cfg.lr)
    history = history_matrix(u, i, n_users, n_items, device)
    rated = torch.zeros(n_users, n_items, device=device)
    rated[torch.from_numpy(u), torch.from_numpy(i)] = 1.0
    rated_per_user = rated.sum(dim=1)

    inputs = [torch.from_numpy(m).to(device) for m in content.matrices]
    mask = torch.from_numpy(content.masks).to(device)
    has_id_t = torch.from_numpy(has_id.astype(np.float32)).to(device)
    rated_items = torch.from_numpy(np.flatnonzero(has_id)).to(device)
    u_t, i_t, r_t = (torch.from_numpy(np.array(a)).to(device) for a in (u, i, r))
    if valid is not None:
        vu, vi, vr = index_ratings(valid, user_ids, movie_ids)
        keep = (vu >= 0) & (vi >= 0)
        vu_t, vi_t, vr_t = (torch.from_numpy(a[keep]).to(device) for a in (vu, vi, vr))

    curves: dict[str, list[float]] = {"train_rmse": [], "rank_loss": []}
    if valid is not None:
        curves["valid_rmse"] = []
    batch = int(np.ceil(len(r) / cfg.batches_per_epoch))
    bar = tqdm(range(cfg.epochs), desc=f"fusion {','.join(content.names) or 'id-only'}", unit="epoch", disable=not progress, leave=False)
    for _ in bar:
        net.train()
        perm = torch.from_numpy(rng.permutation(len(r))).to(device)
        user_groups = torch.from_numpy(rng.permutation(n_users)).to(device).chunk(cfg.batches_per_epoch)
        sq_err, rank_loss = 0.0, 0.0
        for step, start in enumerate(range(0, len(r), batch)):
            idx = perm[start:start + batch]
            keep = has_id_t
            if cfg.item_id_dropout > 0:
                keep = has_id_t * (torch.rand(n_items, device=device) >= cfg.item_id_dropout).float()
            cached = None
            if net.content is not None and step > 0:
                cached = tuple(t.detach() for t in content_out)
            elif net.content is not None:
                content_out = net.content(inputs, mask)
                cached = content_out
            q, bi, _ = net.item_side(inputs, mask, keep, content=cached)
            p, bu = net.user_side(history)
            bu_b, bi_b = bu[u_t[idx]], bi[i_t[idx]]
            pu_b, qi_b = p[u_t[idx]], q[i_t[idx]]
            pred = global_mean + bu_b + bi_b + (pu_b * qi_b).sum(dim=1)
            err = pred - r_t[idx]
            loss = cfg.rating_weight * (err ** 2).mean()
            reg = net.user_vector.weight[u_t[idx]].pow(2).sum(1) + bu_b.pow(2)
            if net.item_vector is not None:
                reg = reg + net.item_vector.weight[i_t[idx]].pow(2).sum(1) + net.item_bias.weight[i_t[idx]].squeeze(-1).pow(2)
            loss = loss + cfg.l2 * reg.mean()
            if net.history_vector is not None:
                loss = loss + cfg.l2 * net.history_vector.weight[i_t[idx]].pow(2).sum(1).mean()
            if cfg.ranking_weight > 0:
                group = user_groups[step % len(user_groups)]
                logits = net.rank_scale * (p[group] @ q.T + bi)
                log_prob = torch.log_softmax(logits, dim=1)
                ranking = -((log_prob * rated[group]).sum(dim=1) / rated_per_user[group].clamp(min=1)).mean()
                loss = loss + cfg.ranking_weight * ranking
                rank_loss += float(ranking.detach()) / cfg.batches_per_epoch
            if step > 0 and net.content is not None and net.item_vector is not None and cfg.distill_weight > 0:
                sample = rated_items[torch.randint(len(rated_items), (min(cfg.distill_items, len(rated_items)),), device=device)]
                qc, bc, _ = net.content([x[sample] for x in inputs], mask[sample])
                target_q = (cached[0][sample] + net.item_vector.weight[sample]).detach()
                target_b = (cached[1][sample] + net.item_bias.weight[sample].squeeze(-1)).detach()
                distill = (qc - target_q).pow(2).sum(1).mean() + (bc - target_b).pow(2).mean()
                loss = loss + cfg.distill_weight * distill
            opt.zero_grad()
            loss.backward()
            opt.step()
            sq_err += float((err.detach() ** 2).sum())
        curves["train_rmse"].append(float(np.sqrt(sq_err / len(r))))
        curves["rank_loss"].append(rank_loss)
        if valid is not None:
            net.eval()
            with torch.no_grad():
                q, bi, _ = net.item_side(inputs, mask, has_id_t)
                p, bu = net.user_side(history)
                vp = (global_mean + bu[vu_t] + bi[vi_t] + (p[vu_t] * q[vi_t]).sum(1)).clamp(0.5, 5.0)
                curves["valid_rmse"].append(float(((vp - vr_t) ** 2).mean().sqrt()))
            bar.set_postfix(valid_rmse=f"{curves['valid_rmse'][-1]:.4f}")
    net.eval()
    return TrainedFusion(net, cfg, content, user_ids, has_id, global_mean, u, i, curves, time.perf_counter() - started)
