"""``ItemIndex``: every servable movie's vector and bias as one tensor, and top-N by one matrix
product.

An index is never changed in place: ``with_item`` returns a new index, so a request that holds
the old one finishes on it while new requests use the new one (atomic swap by reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from movierec.models.serving import ServingArtifact


def pick_device(preference: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU; otherwise the named device."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


@dataclass(frozen=True)
class Scored:
    movie_id: int
    score: float


class ItemIndex:
    def __init__(
        self,
        version: str,
        movie_ids: np.ndarray,
        vectors: torch.Tensor,
        bias: torch.Tensor,
        modality_names: list[str],
        attention: np.ndarray | None,
    ):
        self.version = version
        self.movie_ids = np.asarray(movie_ids, np.int64)
        self.vectors = vectors
        self.bias = bias
        self.modality_names = list(modality_names)
        self.attention = attention
        self._pos = {int(m): i for i, m in enumerate(self.movie_ids)}
        self._sorted_rows = np.argsort(self.movie_ids, kind="stable")
        self._sorted_ids = self.movie_ids[self._sorted_rows]
        # unit vectors for "most similar liked movie": cosine on the fused item vectors
        self._unit = torch.nn.functional.normalize(vectors, dim=1) if len(self.movie_ids) else vectors

    @classmethod
    def from_artifact(cls, artifact: ServingArtifact, device: torch.device) -> "ItemIndex":
        return cls(
            artifact.version,
            artifact.movie_ids,
            torch.from_numpy(artifact.item_vectors).to(device),
            torch.from_numpy(artifact.item_bias).to(device),
            artifact.modality_names,
            artifact.modality_attention,
        )

    @property
    def device(self) -> torch.device:
        return self.vectors.device

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.movie_ids)

    def __contains__(self, movie_id: int) -> bool:
        return int(movie_id) in self._pos

    def position(self, movie_id: int) -> int | None:
        return self._pos.get(int(movie_id))

    @property
    def rows(self) -> dict[int, int]:
        """Movie id -> row (read-only by convention: the index is never changed in place)."""
        return self._pos

    def scores(self, user_vector: np.ndarray) -> torch.Tensor:
        """``user_vector . item_vector + item_bias`` for every item (one fused pass)."""
        u = torch.as_tensor(np.asarray(user_vector, np.float32), device=self.device)
        if u.shape != (self.dim,):
            raise ValueError(f"user vector has {u.shape[0] if u.ndim == 1 else tuple(u.shape)} dims, the model has {self.dim}")
        return torch.addmv(self.bias, self.vectors, u)

    def top_n(self, user_vector: np.ndarray, k: int, allowed: torch.Tensor | np.ndarray | None = None) -> list[Scored]:
        """The ``k`` best-scoring items among ``allowed`` (a boolean mask over ``movie_ids``,
        best a tensor on the index's device, e.g. from ``FilterColumns.mask``)."""
        scores = self.scores(user_vector)
        if allowed is not None:
            keep = torch.as_tensor(allowed, dtype=torch.bool, device=self.device)
            scores.masked_fill_(~keep, float("-inf"))
        k = min(k, len(self))
        if k <= 0:
            return []
        values, idx = torch.topk(scores, k)
        return [Scored(int(self.movie_ids[i]), float(v)) for v, i in zip(values.cpu().tolist(), idx.cpu().tolist()) if v != float("-inf")]

    def attention_of(self, movie_id: int) -> dict[str, float]:
        pos = self._pos.get(int(movie_id))
        if pos is None or self.attention is None:
            return {}
        return {name: round(float(w), 4) for name, w in zip(self.modality_names, self.attention[pos]) if w > 0}

    def nearest(self, movie_ids: list[int], reference_ids: list[int]) -> list[tuple[int, float] | None]:
        """For each of ``movie_ids``, the most similar of ``reference_ids`` (cosine of item
        vectors) and the similarity; None when no reference is in the index (a movie is never
        its own neighbour). One matrix product on the index's device; ids are mapped to rows
        in numpy (this runs for every candidate of every request)."""
        refs = np.asarray(reference_ids, np.int64)
        if len(refs):
            _, first = np.unique(refs, return_index=True)
            refs = refs[np.sort(first)]  # without repeats, in the given order (ties go to the first)
        ref_rows = self.rows_of(refs)
        refs, ref_rows = refs[ref_rows >= 0], ref_rows[ref_rows >= 0]
        ids = np.asarray(movie_ids, np.int64)
        rows = self.rows_of(ids)
        present = np.flatnonzero(rows >= 0)
        if len(refs) == 0 or len(present) == 0:
            return [None] * len(movie_ids)
        sims = self._unit[torch.as_tensor(rows[present], device=self.device)] @ self._unit[torch.as_tensor(ref_rows, device=self.device)].T
        itself = torch.as_tensor(ids[present][:, None] == refs[None, :], device=self.device)
        best_sim, best = sims.masked_fill_(itself, float("-inf")).max(dim=1)
        best_sim, best = best_sim.cpu().numpy(), best.cpu().numpy()
        found = np.isfinite(best_sim)
        out: list[tuple[int, float] | None] = [None] * len(movie_ids)
        for i, ref, sim in zip(present[found].tolist(), refs[best[found]].tolist(), best_sim[found].tolist()):
            out[i] = (ref, round(sim, 4))
        return out

    def rows_of(self, movie_ids: np.ndarray) -> np.ndarray:
        """The index row of each movie id, -1 where the index does not hold it (vectorised)."""
        ids = np.asarray(movie_ids, np.int64)
        if len(ids) == 0 or len(self.movie_ids) == 0:
            return np.full(len(ids), -1, np.int64)
        at = np.minimum(np.searchsorted(self._sorted_ids, ids), len(self._sorted_ids) - 1)
        return np.where(self._sorted_ids[at] == ids, self._sorted_rows[at], -1)

    def attention_rows(self, movie_ids: list[int]) -> list[dict[str, float]]:
        """``attention_of`` for many movies at once."""
        if self.attention is None:
            return [{} for _ in movie_ids]
        rows = [self._pos.get(int(m)) for m in movie_ids]
        values = np.round(self.attention[[r if r is not None else 0 for r in rows]].astype(np.float64), 4).tolist()
        return [
            {} if r is None else {n: w for n, w in zip(self.modality_names, v) if w > 0}
            for r, v in zip(rows, values)
        ]

    def with_item(self, movie_id: int, vector: np.ndarray, bias: float, attention: dict[str, float]) -> "ItemIndex":
        """A new index with this movie added (or its row replaced)."""
        vec = torch.as_tensor(np.asarray(vector, np.float32), device=self.device).reshape(1, -1)
        if vec.shape[1] != self.dim:
            raise ValueError(f"item vector has {vec.shape[1]} dims, the model has {self.dim}")
        b = torch.tensor([float(bias)], dtype=self.bias.dtype, device=self.device)
        att_row = np.array([[attention.get(n, 0.0) for n in self.modality_names]], np.float32)
        pos = self._pos.get(int(movie_id))
        if pos is not None:
            vectors, biases = self.vectors.clone(), self.bias.clone()
            vectors[pos], biases[pos] = vec[0], b[0]
            att = None if self.attention is None else self.attention.copy()
            if att is not None:
                att[pos] = att_row[0]
            return ItemIndex(self.version, self.movie_ids, vectors, biases, self.modality_names, att)
        att = None if self.attention is None else np.concatenate([self.attention, att_row])
        return ItemIndex(
            self.version,
            np.append(self.movie_ids, np.int64(movie_id)),
            torch.cat([self.vectors, vec]),
            torch.cat([self.bias, b]),
            self.modality_names,
            att,
        )
