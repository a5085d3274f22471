"""``Int8Scan``: a large CPU catalog's item vectors as 8-bit integers, for a first pass that reads a
quarter of the bytes of the fp32 product (the scan is limited by memory bandwidth).

Each item row is quantized symmetrically with its own scale (``max |v| / 127``). The product runs
in fbgemm's dynamic int8 linear, which quantizes the user vector to 7-bit unsigned integers with
one scale and zero point (``reduce_range``: no overflow of its 16-bit pair sums) and accumulates
in 32-bit integers. ``ItemIndex`` takes the scan's best ``k + SHORTLIST_MARGIN`` and rescores
them in fp32, so every served score is the fp32 one; a movie is missed only when int8 rounding
ranks it below a thousand others it beats in fp32. No cheap bound rules that out: on a catalog
shaped like the served model's (clustered vectors, unequal norms) the worst-case rounding error
exceeds the score gaps, so how often the lists equal the fp32 scan's is measured instead
(``movierec bench ranker``, the "same as fp32" columns).
"""

from __future__ import annotations

import warnings

import torch

MIN_ITEMS = 100_000
"""CPU catalogs from this size on get an int8 first pass (smaller ones are cheap to scan in fp32)."""
_LEVELS = 127
"""Largest quantized magnitude of an item value."""
_BLOCK = 65_536
"""Rows quantized at a time (bounds the temporary fp32 copies)."""


def int8_supported() -> bool:
    """Whether this torch build has the fbgemm/x86 int8 kernels the scan runs on."""
    return bool({"fbgemm", "x86"} & set(torch.backends.quantized.supported_engines))


class Int8Scan:
    """The int8 copy of ``vectors`` (rows ``0 .. rows-1`` of an index)."""

    def __init__(self, vectors: torch.Tensor):
        n, dim = vectors.shape
        self.rows = n
        scale = vectors.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / _LEVELS
        q = torch.empty((n, dim), dtype=torch.int8)
        for start in range(0, n, _BLOCK):
            q[start:start + _BLOCK] = torch.round(vectors[start:start + _BLOCK] / scale[start:start + _BLOCK, None]).to(torch.int8)
        with warnings.catch_warnings():  # quantized tensors are deprecated upstream; torch is pinned
            warnings.simplefilter("ignore", UserWarning)
            weight = torch._make_per_channel_quantized_tensor(q, scale.double(), torch.zeros(n, dtype=torch.long), 0)
            self._packed = torch.ops.quantized.linear_prepack(weight, None)

    @classmethod
    def for_index(cls, vectors: torch.Tensor) -> "Int8Scan | None":
        """A scan for an index's vectors when it pays (CPU, at least ``MIN_ITEMS`` rows) and can run."""
        if vectors.device.type != "cpu" or len(vectors) < MIN_ITEMS or not int8_supported():
            return None
        return cls(vectors)

    def scores(self, user: torch.Tensor) -> torch.Tensor:
        """Approximate ``user . row`` for every row (fp32, no bias)."""
        return torch.ops.quantized.linear_dynamic(user.reshape(1, -1), self._packed, True)[0]
