"""``ItemIndex``: every servable movie's vector and bias as one tensor, and top-N by one matrix
product.

On the CPU, a large catalog is scanned in two steps: an int8 copy of the vectors is scanned first
(``movierec.serving.int8_scan``: a quarter of the bytes, and the scan is limited by memory
bandwidth), and its best ``k + SHORTLIST_MARGIN`` are rescored in fp32. Scores are fp32's; the
lists are fp32's unless int8 rounding pushed a movie out of the shortlist (how often is measured
by ``movierec bench ranker``). Movies added or replaced after the int8 copy was built are scored
in fp32 within the first pass (the copy is rebuilt with the next model version).

New movies (no one rated them in training, or added since) can be given a share of the top slots
(``new_share``; the rule is ``movierec.serving.new_movies``); that path scans in fp32.

An index is never changed in place: ``with_item`` returns a new index, so a request that holds
the old one finishes on it while new requests use the new one (atomic swap by reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from movierec.models.serving import ServingArtifact
from movierec.serving.int8_scan import Int8Scan
from movierec.serving.new_movies import new_movie_slots


def pick_device(preference: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU; otherwise the named device."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


EXCLUDED = 1e30
"""Subtracted from the score of a movie the filters exclude (a float mask added in one pass;
``masked_fill_`` with a boolean mask took ~4 ms of a ~50 ms scan at 10^6 items on the CPU)."""
_EXCLUDED_BELOW = -EXCLUDED / 2
SHORTLIST_MARGIN = 1024
"""Extra candidates the int8 scan keeps beyond ``k`` for the fp32 rescoring: a wider shortlist
keeps more of the fp32 lists whole for a slightly larger top-k (``movierec bench ranker`` times
the requests and counts the lists that equal the fp32 scan's)."""


@dataclass(frozen=True)
class Scored:
    movie_id: int
    score: float


def _exclude(scores: torch.Tensor, keep: torch.Tensor) -> None:
    """Push the scores of rows where ``keep`` is False below every real score, in place."""
    scores.sub_((~keep).view(torch.uint8).to(scores.dtype), alpha=EXCLUDED)


class ItemIndex:
    def __init__(
        self,
        version: str,
        movie_ids: np.ndarray,
        vectors: torch.Tensor,
        bias: torch.Tensor,
        modality_names: list[str],
        attention: np.ndarray | None,
        new: np.ndarray | None = None,
        int8: Int8Scan | None = None,
        exact_rows: np.ndarray | None = None,
        int8_first: bool = True,
    ):
        self.version = version
        self.movie_ids = np.asarray(movie_ids, np.int64)
        self.vectors = vectors
        self.bias = bias
        self.modality_names = list(modality_names)
        self.attention = attention
        self.new = np.zeros(len(self.movie_ids), bool) if new is None else np.asarray(new, bool)
        """Per row, whether the movie is new (no one rated it in the model's training data)."""
        self._new = torch.as_tensor(self.new, device=vectors.device) if self.new.any() else None
        self._pos = {int(m): i for i, m in enumerate(self.movie_ids)}
        self._sorted_rows = np.argsort(self.movie_ids, kind="stable")
        self._sorted_ids = self.movie_ids[self._sorted_rows]
        # unit vectors for "most similar liked movie": cosine on the fused item vectors
        self._unit = torch.nn.functional.normalize(vectors, dim=1) if len(self.movie_ids) else vectors
        self._int8_first = int8_first
        self._int8 = int8 if int8 is not None else Int8Scan.for_index(vectors) if int8_first else None
        """The int8 first pass (large CPU catalogs; ``int8_first=False`` goes without, to measure
        what it saves), possibly built for an earlier index whose rows this one extends;
        ``_exact_rows`` are the rows it does not hold or holds stale."""
        self._exact_rows = torch.as_tensor(np.unique(np.asarray([] if exact_rows is None else exact_rows, np.int64)))

    @classmethod
    def from_artifact(cls, artifact: ServingArtifact, device: torch.device) -> "ItemIndex":
        return cls(
            artifact.version,
            artifact.movie_ids,
            torch.from_numpy(artifact.item_vectors).to(device),
            torch.from_numpy(artifact.item_bias).to(device),
            artifact.modality_names,
            artifact.modality_attention,
            None if artifact.item_rated is None else ~artifact.item_rated,
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
        return torch.addmv(self.bias, self.vectors, self._user_tensor(user_vector))

    def top_n(self, user_vector: np.ndarray, k: int, allowed: torch.Tensor | np.ndarray | None = None,
              new_share: float = 0.0) -> list[Scored]:
        """The ``k`` best-scoring items among ``allowed`` (a boolean mask over ``movie_ids``,
        best a tensor on the index's device, e.g. from ``FilterColumns.mask``). With ``new_share``
        above 0, new movies are placed among the warm ones (``movierec.serving.new_movies``) and
        carry the score they are placed at."""
        k = min(k, len(self))
        if k <= 0:
            return []
        keep = None if allowed is None else torch.as_tensor(allowed, dtype=torch.bool, device=self.device)
        if new_share > 0 and self._new is not None:
            return self._top_n_with_new(user_vector, k, keep, new_share)
        if self._int8 is not None:
            found = self._top_n_int8(user_vector, k, keep)
        else:
            scores = self.scores(user_vector)
            if keep is not None:
                _exclude(scores, keep)
            found = torch.topk(scores, k)
        values, idx = found
        return [Scored(int(self.movie_ids[i]), float(v)) for v, i in zip(values.cpu().tolist(), idx.cpu().tolist()) if v > _EXCLUDED_BELOW]

    def _top_n_int8(self, user_vector: np.ndarray, k: int, keep: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The top ``k`` of the int8 scan's best ``k + SHORTLIST_MARGIN``, by their fp32 scores."""
        u = self._user_tensor(user_vector)
        coarse = self._int8.scores(u)
        if len(coarse) < len(self):  # rows added since the int8 copy was built
            coarse = torch.cat([coarse, coarse.new_zeros(len(self) - len(coarse))])
        coarse.add_(self.bias)
        if len(self._exact_rows):
            coarse[self._exact_rows] = torch.addmv(self.bias[self._exact_rows], self.vectors[self._exact_rows], u)
        if keep is not None:
            _exclude(coarse, keep)
        short_values, short = torch.topk(coarse, min(len(self), k + SHORTLIST_MARGIN))
        exact = torch.addmv(self.bias[short], self.vectors[short], u)
        exact.masked_fill_(short_values <= _EXCLUDED_BELOW, -EXCLUDED)
        values, at = torch.topk(exact, k)
        return values, short[at]

    def _top_n_with_new(self, user_vector: np.ndarray, k: int, keep: torch.Tensor | None, share: float) -> list[Scored]:
        """Top ``k`` with the allowed new movies placed among the allowed warm ones (fp32 scan)."""
        scores = self.scores(user_vector)
        allowed = keep if keep is not None else torch.ones(len(self), dtype=torch.bool, device=self.device)
        n_new = int((allowed & self._new).sum())
        n_warm = int(allowed.sum()) - n_new
        if n_new == 0 or n_warm == 0:
            return self.top_n(user_vector, k, keep)
        warm = scores.clone()
        _exclude(warm, allowed & ~self._new)
        warm_values, warm_rows = (t.cpu().numpy() for t in torch.topk(warm, min(k, n_warm)))
        _exclude(scores, allowed & self._new)
        new_rows = torch.topk(scores, min(k, n_new)).indices.cpu().numpy()
        at = new_movie_slots(n_warm, n_new, share)[: len(new_rows)]
        placed = np.where(at < n_warm, np.nextafter(warm_values[np.minimum(at, len(warm_values) - 1)].astype(np.float64), -np.inf),
                          float(warm_values[-1]) - 1.0 - np.arange(len(new_rows)))
        # warm rank j sorts as (j, 0); a new movie placed just below warm rank a sorts as (a, 1)
        merged = sorted([(j, 0, int(r), float(v)) for j, (r, v) in enumerate(zip(warm_rows, warm_values))]
                        + [(int(a), 1, int(r), float(v)) for a, r, v in zip(at, new_rows, placed)])[:k]
        return [Scored(int(self.movie_ids[r]), v) for _, _, r, v in merged]

    def _user_tensor(self, user_vector: np.ndarray) -> torch.Tensor:
        """The user vector as a tensor on the index's device, its size checked."""
        u = torch.as_tensor(np.asarray(user_vector, np.float32), device=self.device)
        if u.shape != (self.dim,):
            raise ValueError(f"user vector has {u.shape[0] if u.ndim == 1 else tuple(u.shape)} dims, the model has {self.dim}")
        return u

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
            new = self.new.copy()
            new[pos] = True  # its vector now comes from its content alone
            return ItemIndex(self.version, self.movie_ids, vectors, biases, self.modality_names, att, new,
                             self._int8, self._rows_to_score_exactly(pos), self._int8_first)
        att = None if self.attention is None else np.concatenate([self.attention, att_row])
        return ItemIndex(
            self.version,
            np.append(self.movie_ids, np.int64(movie_id)),
            torch.cat([self.vectors, vec]),
            torch.cat([self.bias, b]),
            self.modality_names,
            att,
            np.append(self.new, True),
            self._int8,
            self._rows_to_score_exactly(len(self)),
            self._int8_first,
        )

    def _rows_to_score_exactly(self, row: int) -> np.ndarray | None:
        """This index's exact rows and ``row``, when an int8 copy is carried over to a new index."""
        return None if self._int8 is None else np.append(self._exact_rows.numpy(), row)
