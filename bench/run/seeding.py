"""Seeds derived from a run's identity, so reruns and reorderings reproduce exactly."""

from __future__ import annotations

import hashlib

import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from the parts' text; stable across processes (unlike hash())."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def tensor_hash(tensors: dict[str, torch.Tensor]) -> str:
    """Short hash of named tensors' float32 bytes, in name order.

    Every run starts from float32 master weights; float32 -> float64 -> float32 round-trips
    exactly, so a float64 run hashes the same as a float32 one from the same start.
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu", torch.float32).contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]
