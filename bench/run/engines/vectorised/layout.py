"""Memory layout of stacked runs: every run's block starts on a 64-byte boundary.

Why: MKL chooses its kernel partly by where each matrix starts, so a run whose matrices sit at
another offset inside the stack can get another summation order (measured: 455 x 30 and 354 x 10
operands, and 354 x 1 results, gave position-dependent sums). With every run's operands and
results aligned alike, a run's numbers are the same whatever group it is in and wherever in it.

`product` writes every batched matrix product into such a stack. torch's `bmm`/`baddbmm` then
compute a product of 400 or more multiply-adds as one `addmm_` per run (its "split along the
batch" path, taken when the result is not contiguous), which is the GEMM call the per-run path
makes, on equally aligned operands: the same numbers (MKL's batched GEMM, the path a contiguous
result takes, sums some shapes in another order). Smaller products take torch's own loop (a
plain sum in order), which equals MKL's for short dot products (measured: up to 4 terms) and
may differ by rounding for longer ones. A stack of one would take yet another path, so a group
of one run is computed as two (`MIN_RUNS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import Tensor

ALIGN_BYTES = 64
MIN_RUNS = 2


def per_block(dtype: torch.dtype) -> int:
    """Elements of `dtype` in one 64-byte block."""
    return max(1, ALIGN_BYTES // dtype.itemsize)


def round_up(count: int, dtype: torch.dtype) -> int:
    """`count` elements rounded up to whole 64-byte blocks (at least one block)."""
    step = per_block(dtype)
    return max(1, -(-count // step)) * step


def padded_rows(n: int, row_elements: int, dtype: torch.dtype) -> int:
    """The fewest rows >= n whose `row_elements`-wide rows fill whole 64-byte blocks."""
    row_bytes = row_elements * dtype.itemsize
    step = ALIGN_BYTES // math.gcd(ALIGN_BYTES, max(1, row_bytes))
    return -(-n // step) * step


def stacked(runs: int, shape: Sequence[int], dtype: torch.dtype, spaced: bool = False) -> Tensor:
    """An uninitialised [runs, *shape] tensor whose runs start on 64-byte boundaries (for a
    result written whole); `spaced`: with at least one block between runs, so that it is never
    contiguous."""
    block, strides = _geometry(tuple(shape), dtype, spaced)
    return torch.empty(runs, block, dtype=dtype).as_strided((runs, *shape), (block, *strides))


@lru_cache(maxsize=256)
def _geometry(
    shape: tuple[int, ...], dtype: torch.dtype, spaced: bool
) -> tuple[int, tuple[int, ...]]:
    """(elements per run, strides of one run's contiguous [*shape] block)."""
    count = math.prod(shape)
    block = round_up(count, dtype)
    if spaced and block == count:
        block += per_block(dtype)
    strides, acc = [], 1
    for size in reversed(shape):
        strides.append(acc)
        acc *= size
    return block, tuple(reversed(strides))


def copy_stacked(t: Tensor) -> Tensor:
    """`t` ([runs, ...]) copied into an aligned stack."""
    out = stacked(t.shape[0], t.shape[1:], t.dtype)
    out.copy_(t)
    return out


class Flat:
    """Named per-run tensors (a model's parameters) laid out in one [runs, P] tensor, each at a
    64-byte boundary (the gaps are never read by a model). Element-wise updates then act on all
    parameters of all runs in one operation, which changes no number: every element sees the
    same operations in the same order as in its own tensor."""

    def __init__(self, names: Sequence[str], shapes: Sequence[Sequence[int]], dtype: torch.dtype):
        self.names = list(names)
        self.shapes = [tuple(s) for s in shapes]
        self.dtype = dtype
        self.offsets, at = [], 0
        for shape in self.shapes:
            self.offsets.append(at)
            at += round_up(math.prod(shape), dtype)
        self.width = at
        real = torch.zeros(self.width, dtype=torch.bool)
        for offset, shape in zip(self.offsets, self.shapes, strict=True):
            real[offset : offset + math.prod(shape)] = True
        self.real = real  # which columns are parameters (the rest are alignment gaps)
        self._gaps: dict[tuple[int, int], Tensor] = {}

    def zeros(self, runs: int) -> Tensor:
        return torch.zeros(runs, self.width, dtype=self.dtype)

    def views(self, flat: Tensor) -> list[Tensor]:
        """[runs, *shape] views of each named tensor in `flat`."""
        runs = flat.shape[0]
        return [
            flat[:, offset : offset + math.prod(shape)].view(runs, *shape)
            for offset, shape in zip(self.offsets, self.shapes, strict=True)
        ]

    def pack(self, tensors: Sequence[Tensor]) -> Tensor:
        """One [runs, P] tensor of per-name [runs, *shape] tensors (gaps zero)."""
        runs = tensors[0].shape[0]
        parts: list[Tensor] = []
        at = 0
        for offset, t in zip(self.offsets, tensors, strict=True):
            if offset > at:
                parts.append(self._zeros(runs, offset - at))
            flat = t.reshape(runs, -1)
            parts.append(flat)
            at = offset + flat.shape[1]
        if self.width > at:
            parts.append(self._zeros(runs, self.width - at))
        return torch.cat(parts, dim=1)

    def _zeros(self, runs: int, width: int) -> Tensor:
        """A [runs, width] block of zeros (kept: `pack` only reads it)."""
        key = (runs, width)
        if key not in self._gaps:
            self._gaps[key] = torch.zeros(runs, width, dtype=self.dtype)
        return self._gaps[key]

    def finite(self, flat: Tensor) -> Tensor:
        """[runs] bool: every parameter element of the run finite (gaps ignored)."""
        return (torch.isfinite(flat) | ~self.real).all(dim=1)


def product(a: Tensor, b: Tensor, bias: Tensor | None = None) -> Tensor:
    """[K, M, N] = a @ b (+ bias [K, N] on every row, as `addmm`), into an aligned stack."""
    out = stacked(a.shape[0], (a.shape[1], b.shape[2]), a.dtype, spaced=True)
    if bias is None:
        return torch.bmm(a, b, out=out)
    return torch.baddbmm(bias.unsqueeze(1), a, b, out=out)
