"""Training the fusion network on a ratings table, and exporting what it learned.

Two stages, each cheap on two CPU cores:

1. **Collaborative.** Each epoch, the rating head takes Adam steps on shuffled minibatches of
   ratings (squared error plus per-rating L2), and the ranking head takes steps on groups of
   users: for each user, every movie they rated should outscore every other movie in the catalog
   (full softmax). User-embedding and history dropout make the history part carry a user alone.
2. **Content.** The content encoder learns to regress, for every rated movie, the vectors and
   biases both heads learned for it, weighting a movie by how much evidence its vectors rest on,
   with random modalities hidden. A movie no one rated is then placed where rated movies like it are.

After the collaborative stage, the ranking head's low-rank item-item term is solved in closed form
from the same ratings (``movierec.models.item_item``); the served vectors carry it after the
ranking head's columns.

Running the content encoder over the whole catalog on every collaborative step would cost a
second per step on a CPU; the two stages keep training to minutes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy import sparse
from tqdm import tqdm

from movierec.data.dataset import LIKE
from movierec.models.config import FusionConfig
from movierec.models.fusion import ContentOut, FusionNet
from movierec.models.item_content import ItemContent
from movierec.models.item_item import ItemItemFactors, fit_item_item
from movierec.models.serving import RatingHead, ServingArtifact


def pick_device(cfg: FusionConfig) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def history_matrix(rows: np.ndarray, cols: np.ndarray, n_users: int, n_items: int, device: torch.device) -> torch.Tensor:
    """Sparse (users, items) with 1/sqrt(|N(u)|) at each rated movie."""
    counts = np.bincount(rows, minlength=n_users).astype(np.float32)
    values = 1.0 / np.sqrt(np.maximum(counts[rows], 1.0))
    idx = torch.from_numpy(np.stack([rows, cols]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.from_numpy(values), (n_users, n_items), check_invariants=False).coalesce().to(device)


def liking(ratings: np.ndarray, dislike_weight: float) -> np.ndarray:
    """What each rated movie counts for in what the ranking parts learn: 1 if liked (rating >= 4),
    else ``dislike_weight``."""
    return np.where(np.asarray(ratings) >= LIKE, 1.0, dislike_weight).astype(np.float32)


def item_item_history_weights(ratings: np.ndarray, cfg: FusionConfig) -> np.ndarray | None:
    """Per rated movie, what it counts for in the item-item term's user side: its ``liking`` with
    ``cfg.item_item_weighs_history``, else None (1 each, as models trained before it had)."""
    return liking(ratings, cfg.dislike_weight) if cfg.item_item_weighs_history else None


def evidence_weight(counts: np.ndarray, shrinkage: float) -> np.ndarray:
    """n / (n + kappa): how much of an item's served vectors is its ID part (0 for unrated items)."""
    counts = np.asarray(counts, np.float32)
    if shrinkage <= 0:
        return (counts > 0).astype(np.float32)
    return counts / (counts + shrinkage)


@dataclass
class RankingRows:
    """The ranking head's training matrices, (users, movies), kept sparse: ``rated`` holds 1 at each
    rated movie, ``target`` what it counts for (``liking``). Dense, the pair would take 77 GB at
    ml-25m's size (162k users x 59k movies, float32); a ranking step densifies only its own users'
    rows (``rank_users_per_step`` x movies)."""

    rated: sparse.csr_matrix
    target: sparse.csr_matrix
    device: torch.device

    @classmethod
    def of(cls, users: np.ndarray, movies: np.ndarray, target: np.ndarray, n_users: int, n_items: int,
           device: torch.device) -> "RankingRows":
        """From (user row, movie row) pairs, one per rating (a pair given twice counts once, its last ``target``)."""
        pairs = users.astype(np.int64) * n_items + movies
        _, last = np.unique(pairs[::-1], return_index=True)
        keep = len(pairs) - 1 - last

        def matrix(values: np.ndarray) -> sparse.csr_matrix:
            return sparse.csr_matrix((values.astype(np.float32), (users[keep], movies[keep])), shape=(n_users, n_items))

        return cls(matrix(np.ones(len(keep))), matrix(np.asarray(target)[keep]), device)

    def rows(self, users: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense ``rated`` and ``target`` rows of ``users``, on the training device."""
        return tuple(torch.from_numpy(m[users].toarray()).to(self.device) for m in (self.rated, self.target))


@dataclass
class TrainedFusion:
    net: FusionNet
    cfg: FusionConfig
    content: ItemContent
    user_ids: np.ndarray
    global_mean: float
    history_rows: np.ndarray
    history_cols: np.ndarray
    curves: dict[str, list[float]] = field(default_factory=dict)
    train_seconds: float = 0.0
    item_item: ItemItemFactors | None = None
    """The ranking head's item-item term (None when ``cfg.item_item_rank`` is 0)."""
    history_weights: np.ndarray | None = None
    """Per (history row, history col) pair, its weight in the item-item term's user side (None: 1
    each; see ``cfg.item_item_weighs_history``)."""

    @property
    def movie_ids(self) -> np.ndarray:
        return self.content.movie_ids

    @property
    def item_counts(self) -> np.ndarray:
        return np.bincount(self.history_cols, minlength=len(self.movie_ids))

    @property
    def has_id(self) -> np.ndarray:
        """Movies rated in training (the ones with a learned ID part)."""
        return self.item_counts > 0

    def _device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def item_tables(self) -> dict[str, np.ndarray | None]:
        """Every item's served vectors: ID and content parts blended by evidence (see fusion)."""
        self.net.eval()
        net, dev = self.net, self._device()
        def id_weight(shrinkage: float) -> torch.Tensor:
            if net.content is None:
                w = self.has_id.astype(np.float32)
            elif not self.cfg.use_item_ids:
                w = np.zeros(len(self.movie_ids), np.float32)
            else:
                w = evidence_weight(self.item_counts, shrinkage)
            return torch.from_numpy(w).to(dev)

        w, wr = id_weight(self.cfg.shrinkage), id_weight(self.cfg.rating_shrinkage)
        out = {
            "vector": net.item_vector.weight * wr[:, None], "bias": net.item_bias.weight[:, 0] * wr,
            "rank_vector": net.rank_item_vector.weight * w[:, None], "rank_bias": net.rank_item_bias.weight[:, 0] * w,
            "attention": None,
        }
        if net.content is not None:
            c = net.content([torch.from_numpy(m).to(dev) for m in self.content.matrices], torch.from_numpy(self.content.masks).to(dev))
            rest, rating_rest = 1.0 - w, 1.0 - wr
            out["vector"] = out["vector"] + c.vector * rating_rest[:, None]
            out["bias"] = out["bias"] + c.bias * rating_rest
            out["rank_vector"] = out["rank_vector"] + c.rank_vector * rest[:, None]
            out["rank_bias"] = out["rank_bias"] + c.rank_bias * rest
            out["attention"] = c.attention
        return {k: (v.cpu().numpy() if v is not None else None) for k, v in out.items()}

    @torch.no_grad()
    def rank_user_vectors(self) -> np.ndarray:
        """Served user vectors: the ranking head's, then the item-item term's part."""
        self.net.eval()
        dev = self._device()
        history = history_matrix(self.history_rows, self.history_cols, len(self.user_ids), len(self.movie_ids), dev)
        learned = self.net.rank_user_side(history).cpu().numpy()
        if self.item_item is None:
            return learned
        item_item = self.item_item.user_vectors(self.history_rows, self.history_cols, len(self.user_ids), self.history_weights)
        return np.hstack([learned, item_item])

    def rank_item_vectors(self, items: dict[str, np.ndarray | None]) -> np.ndarray:
        """Served item vectors from ``item_tables()``: the ranking head's, then the item-item term's part."""
        return items["rank_vector"] if self.item_item is None else np.hstack([items["rank_vector"], self.item_item.item])

    def export(self, version: str, metadata: dict) -> ServingArtifact:
        items = self.item_tables()
        rating = RatingHead(
            user_vectors=self.net.user_vector.weight.detach().cpu().numpy(),
            user_bias=self.net.user_bias.weight.detach().cpu().numpy()[:, 0],
            item_vectors=items["vector"], item_bias=items["bias"],
        )
        return ServingArtifact(
            version=version, movie_ids=self.movie_ids, item_vectors=self.rank_item_vectors(items), item_bias=items["rank_bias"],
            user_ids=self.user_ids, user_vectors=self.rank_user_vectors(), user_bias=np.zeros(len(self.user_ids), np.float32),
            global_mean=self.global_mean, modality_names=list(self.content.names), modality_attention=items["attention"],
            rating=rating, metadata=metadata, item_rated=self.has_id,
        )


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


def _rating_step(net: FusionNet, cfg: FusionConfig, global_mean: float, u: torch.Tensor, i: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and errors of the rating head on one minibatch."""
    p, q = net.user_vector(u), net.item_vector(i)
    bu, bi = net.user_bias(u)[:, 0], net.item_bias(i)[:, 0]
    err = global_mean + bu + bi + (p * q).sum(1) - r
    loss = (err ** 2).mean() + cfg.l2 * (p.pow(2).sum(1) + q.pow(2).sum(1)).mean() + cfg.bias_l2 * (bu.pow(2) + bi.pow(2)).mean()
    return loss, err.detach()


def _rank_step(net: FusionNet, cfg: FusionConfig, x: torch.Tensor, y: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
    """Full-softmax ranking loss of ``users``, whose rows of the rated matrix are ``x`` (1 at each
    rated movie): each rated movie should outscore the whole catalog, weighted by ``y`` (a liked
    movie 1, another ``dislike_weight``)."""
    keep_user = None
    if net.history_vector is not None:
        seen = x
        if cfg.history_dropout > 0:
            seen = x * (torch.rand_like(x) >= cfg.history_dropout).float()
        history = seen / seen.sum(1, keepdim=True).clamp(min=1).sqrt()
        if cfg.user_id_dropout > 0:
            keep_user = (torch.rand(len(users), device=x.device) >= cfg.user_id_dropout).float() / (1 - cfg.user_id_dropout)
    else:
        history = None
    p = net.rank_user_side(history, users, keep_user)
    logits = p @ net.rank_item_vector.weight.T + net.rank_item_bias.weight[:, 0]
    log_prob = torch.log_softmax(logits, dim=1)
    return -((log_prob * y).sum(1) / y.sum(1).clamp(min=1e-6)).mean()


def _train_collaborative(net: FusionNet, cfg: FusionConfig, global_mean: float, u: np.ndarray, i: np.ndarray, r: np.ndarray,
                         ranked: RankingRows, rng: np.random.Generator, valid, curves: dict, progress: bool, label: str) -> None:
    device = ranked.device
    rating_params = [*net.user_vector.parameters(), *net.user_bias.parameters(), *net.item_vector.parameters(), *net.item_bias.parameters()]
    rank_params = [*net.rank_user_vector.parameters(), *net.rank_item_vector.parameters(), *net.rank_item_bias.parameters()]
    if net.history_vector is not None:
        rank_params += list(net.history_vector.parameters())
    rating_opt = torch.optim.Adam(rating_params, lr=cfg.lr)
    rank_opt = torch.optim.AdamW(rank_params, lr=cfg.lr, weight_decay=cfg.rank_weight_decay)
    u_t, i_t, r_t = (torch.from_numpy(np.array(a)).to(device) for a in (u, i, r))
    n_users = ranked.rated.shape[0]
    bar = tqdm(range(cfg.epochs), desc=f"fusion {label}", unit="epoch", disable=not progress, leave=False)
    for _ in bar:
        net.train()
        sq_err, rank_loss, rank_steps = 0.0, 0.0, 0
        for idx in torch.from_numpy(rng.permutation(len(r))).to(device).split(cfg.batch_size):
            loss, err = _rating_step(net, cfg, global_mean, u_t[idx], i_t[idx], r_t[idx])
            rating_opt.zero_grad()
            loss.backward()
            rating_opt.step()
            sq_err += float((err ** 2).sum())
        order = rng.permutation(n_users)
        for start in range(0, n_users, cfg.rank_users_per_step):
            users = order[start: start + cfg.rank_users_per_step]
            loss = _rank_step(net, cfg, *ranked.rows(users), torch.from_numpy(users).to(device))
            rank_opt.zero_grad()
            loss.backward()
            rank_opt.step()
            rank_loss += float(loss.detach())
            rank_steps += 1
        curves["train_rmse"].append(float(np.sqrt(sq_err / len(r))))
        curves["rank_loss"].append(rank_loss / max(rank_steps, 1))
        if valid is not None:
            vu, vi, vr = valid
            with torch.no_grad():
                pred = global_mean + net.user_bias(vu)[:, 0] + net.item_bias(vi)[:, 0] + (net.user_vector(vu) * net.item_vector(vi)).sum(1)
                curves["valid_rmse"].append(float(((pred.clamp(0.5, 5.0) - vr) ** 2).mean().sqrt()))
            bar.set_postfix(valid_rmse=f"{curves['valid_rmse'][-1]:.4f}")


def _hide_modalities(mask: torch.Tensor, share: float) -> torch.Tensor:
    """Hide a random ``share`` of present modalities per item, always keeping at least one."""
    if share <= 0 or mask.shape[1] < 2:
        return mask
    hidden = mask & (torch.rand(mask.shape, device=mask.device) >= share)
    lost = mask.any(1) & ~hidden.any(1)
    if lost.any():
        # give back one present modality, chosen at random, to items that lost all of theirs
        scores = torch.rand(mask.shape, device=mask.device).masked_fill(~mask, -1.0)
        hidden[lost, scores[lost].argmax(1)] = True
    return hidden


def _train_content(net: FusionNet, cfg: FusionConfig, content: ItemContent, counts: np.ndarray,
                   rng: np.random.Generator, curves: dict, progress: bool, label: str) -> None:
    """Stage 2: the content encoder regresses the rated movies' learned vectors and biases."""
    device = next(net.parameters()).device
    rows = np.flatnonzero((counts > 0) & content.masks.any(axis=1))
    if len(rows) == 0:
        return
    rows_t = torch.from_numpy(rows).to(device)
    with torch.no_grad():
        targets = [net.item_vector.weight[rows_t], net.item_bias.weight[rows_t, 0],
                   net.rank_item_vector.weight[rows_t], net.rank_item_bias.weight[rows_t, 0]]
        # each target's squared error is measured against its own spread, so no head dominates
        scales = [t.var(dim=0).sum().clamp(min=1e-8) if t.ndim == 2 else t.var().clamp(min=1e-8) for t in targets]
    weight = torch.from_numpy(evidence_weight(counts[rows], cfg.shrinkage) if cfg.shrinkage > 0 else np.ones(len(rows), np.float32)).to(device)
    inputs = [torch.from_numpy(m[rows]).to(device) for m in content.matrices]
    mask = torch.from_numpy(content.masks[rows]).to(device)
    opt = torch.optim.AdamW(net.content.parameters(), lr=cfg.content_lr, weight_decay=1e-4)
    batch = max(cfg.batch_size, 1)
    curves["content_loss"] = []
    bar = tqdm(range(cfg.content_epochs), desc=f"content {label}", unit="epoch", disable=not progress, leave=False)
    for _ in bar:
        net.content.train()
        total = 0.0
        for idx in torch.from_numpy(rng.permutation(len(rows))).to(device).split(batch):
            out: ContentOut = net.content([x[idx] for x in inputs], _hide_modalities(mask[idx], cfg.modality_dropout))
            preds = [out.vector, out.bias, out.rank_vector, out.rank_bias]
            loss = sum(
                (((p - t[idx]) ** 2).reshape(len(idx), -1).sum(1) * weight[idx]).sum() / weight[idx].sum() / s
                for p, t, s in zip(preds, targets, scales)
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        curves["content_loss"].append(total / len(rows))
    net.content.eval()


COLLABORATIVE_PARTS = ("user_vector", "user_bias", "item_vector", "item_bias", "rank_user_vector", "rank_item_vector",
                       "rank_item_bias", "history_vector")


def collaborative_key(cfg: FusionConfig) -> dict:
    """The settings the collaborative stage depends on: models that agree on them (e.g. an
    ablation over modalities) can share one collaborative stage."""
    content_only = {"modalities", "token_dim", "heads", "layers", "dropout", "content_epochs", "content_lr",
                    "modality_dropout", "shrinkage", "rating_shrinkage", "use_item_ids", "fold_in_l2", "device", "cpu_threads"}
    return {k: v for k, v in cfg.model_dump().items() if k not in content_only}


CONTENT_STAGE_SEED = 7919
"""Offset of the content stage's random seeds from ``cfg.seed``."""


def train_fusion(
    train: pd.DataFrame, content: ItemContent, cfg: FusionConfig, valid: pd.DataFrame | None = None, progress: bool = True,
    collaborative: TrainedFusion | None = None,
) -> TrainedFusion:
    """Fit on ``train`` (user_id, movie_id, rating); ``valid`` only feeds the learning curve.

    ``collaborative``: a model trained on the same ratings with the same collaborative settings
    (``collaborative_key``) whose collaborative stage is reused; only the content stage runs.
    """
    if pick_device(cfg).type == "cpu":
        threads = torch.get_num_threads()
        torch.set_num_threads(min(threads, cfg.cpu_threads))
        try:
            return _train_fusion(train, content, cfg, valid, progress, collaborative)
        finally:
            torch.set_num_threads(threads)
    return _train_fusion(train, content, cfg, valid, progress, collaborative)


def _train_fusion(train: pd.DataFrame, content: ItemContent, cfg: FusionConfig, valid: pd.DataFrame | None, progress: bool,
                  collaborative: TrainedFusion | None) -> TrainedFusion:
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
    global_mean = float(r.mean())

    net = FusionNet(n_users, n_items, content.dims, cfg).to(device)
    valid_t = None
    if valid is not None:
        vu, vi, vr = index_ratings(valid, user_ids, movie_ids)
        keep = (vu >= 0) & (vi >= 0)
        valid_t = tuple(torch.from_numpy(a[keep]).to(device) for a in (vu, vi, vr))
    liked = liking(r, cfg.dislike_weight)
    curves: dict[str, list[float]] = {"train_rmse": [], "rank_loss": []}
    if valid is not None:
        curves["valid_rmse"] = []
    label = ",".join(content.names) or "id-only"
    if collaborative is not None:
        if collaborative_key(collaborative.cfg) != collaborative_key(cfg) or not np.array_equal(collaborative.user_ids, user_ids) \
                or not np.array_equal(collaborative.movie_ids, movie_ids) or not np.array_equal(collaborative.history_cols, i):
            raise ValueError("the collaborative stage to reuse was trained on other ratings or settings")
        state = collaborative.net.state_dict()
        net.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in COLLABORATIVE_PARTS}, strict=False)
        curves.update({k: list(v) for k, v in collaborative.curves.items() if k != "content_loss"})
        item_item = collaborative.item_item
    else:
        ranked = RankingRows.of(u, i, liked, n_users, n_items, device)
        _train_collaborative(net, cfg, global_mean, u, i, r, ranked, rng, valid_t, curves, progress, label)
        item_item = None
        if cfg.item_item_rank > 0:
            item_item = fit_item_item(u, i, n_users, n_items, rank=cfg.item_item_rank, l2=cfg.item_item_l2, weight=cfg.item_item_weight,
                                      max_items=cfg.item_item_max_items, seed=cfg.seed, target=liked,
                                      count_l2=cfg.item_item_count_l2)
    if net.content is not None:
        # its own random streams, so a content stage gives the same model whether the collaborative
        # stage ran just before (drawing from the streams) or was reused (ablation rows)
        torch.manual_seed(cfg.seed + CONTENT_STAGE_SEED)
        content_rng = np.random.default_rng([cfg.seed, CONTENT_STAGE_SEED])
        _train_content(net, cfg, content, np.bincount(i, minlength=n_items), content_rng, curves, progress, label)
    net.eval()
    return TrainedFusion(net, cfg, content, user_ids, global_mean, u, i, curves, time.perf_counter() - started, item_item,
                         history_weights=item_item_history_weights(r, cfg))
