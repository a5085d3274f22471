"""``Int8Scan``: a large CPU catalog's item vectors as 8-bit integers, for a first pass that reads a
quarter of the bytes of the fp32 product (the scan is limited by memory bandwidth), with a bound
on how far its scores can be from the fp32 ones.

Each item row is quantized symmetrically with its own scale (``max |v| / 127``). The product runs
in fbgemm's dynamic int8 linear, which quantizes the user vector to 7-bit unsigned integers with
one scale and zero point (``reduce_range``: no overflow of its 16-bit pair sums) and accumulates
in 32-bit integers. With ``w`` an item row, ``u`` the user vector and ``e_w``, ``e_u`` their
rounding errors, the scan's score differs from ``w . u`` by ``w . e_u + e_w . u_q``, which is at
most ``|w| |e_u| + |e_w| (|u| + |e_u|)`` (Cauchy-Schwarz); ``|e_u| <= sqrt(d) s_u / 2`` for the
user vector's step ``s_u``, and the largest ``|w|`` and ``|e_w|`` are kept when the scan is built.
``ItemIndex`` rescores a shortlist in fp32 and uses this bound to prove the shortlist holds the
exact top-k (or falls back to the fp32 scan), so served lists are exactly the fp32 ones.
"""

from __future__ import annotations

import math
import warnings

import torch

MIN_ITEMS = 100_000
"""CPU catalogs from this size on get an int8 first pass (smaller ones are cheap to scan in fp32)."""
_LEVELS = 127
"""Largest quantized magnitude of an item value; the user vector gets 0..127 (fbgemm's reduced range)."""
_BLOCK = 65_536
"""Rows quantized at a time (bounds the temporary fp32 copies)."""
_FLOAT_SLACK = 1e-5
"""Relative room for fp32 rounding in the rescaling and in the exact scores themselves."""


def int8_supported() -> bool:
    """Whether this torch build has the fbgemm/x86 int8 kernels the scan runs on."""
    return bool({"fbgemm", "x86"} & set(torch.backends.quantized.supported_engines))


class Int8Scan:
    """The int8 copy of ``vectors`` (rows ``0 .. rows-1`` of an index) and its error bound."""

    def __init__(self, vectors: torch.Tensor):
        n, self.dim = vectors.shape
        self.rows = n
        scale = vectors.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / _LEVELS
        q = torch.empty((n, self.dim), dtype=torch.int8)
        residual = torch.empty(n)
        for start in range(0, n, _BLOCK):
            block, s = vectors[start:start + _BLOCK], scale[start:start + _BLOCK, None]
            rounded = torch.round(block / s)
            q[start:start + _BLOCK] = rounded.to(torch.int8)
            residual[start:start + _BLOCK] = (block - rounded * s).norm(dim=1)
        with warnings.catch_warnings():  # quantized tensors are deprecated upstream; torch is pinned
            warnings.simplefilter("ignore", UserWarning)
            weight = torch._make_per_channel_quantized_tensor(q, scale.double(), torch.zeros(n, dtype=torch.long), 0)
            self._packed = torch.ops.quantized.linear_prepack(weight, None)
        self._row_norm = float(vectors.norm(dim=1).max())
        self._residual_norm = float(residual.max())

    @classmethod
    def for_index(cls, vectors: torch.Tensor) -> "Int8Scan | None":
        """A scan for an index's vectors when it pays (CPU, at least ``MIN_ITEMS`` rows) and can run."""
        if vectors.device.type != "cpu" or len(vectors) < MIN_ITEMS or not int8_supported():
            return None
        return cls(vectors)

    def scores(self, user: torch.Tensor) -> torch.Tensor:
        """Approximate ``user . row`` for every row (fp32, no bias)."""
        return torch.ops.quantized.linear_dynamic(user.reshape(1, -1), self._packed, True)[0]

    def error_bound(self, user: torch.Tensor, bias_max: float) -> float:
        """The most any row's ``scores(user) + bias`` can differ from its fp32 ``addmv`` score."""
        u_norm = float(user.norm())
        step = (max(float(user.max()), 0.0) - min(float(user.min()), 0.0)) / _LEVELS
        user_error = math.sqrt(self.dim) * step / 2
        bound = self._row_norm * user_error + self._residual_norm * (u_norm + user_error)
        return bound + _FLOAT_SLACK * (self._row_norm * u_norm + bias_max)
