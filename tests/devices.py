"""Device parametrisation shared by tests: CPU always, CUDA only when a GPU is present."""

from __future__ import annotations

import pytest
import torch

CUDA = pytest.param(
    "cuda",
    marks=[
        pytest.mark.cuda,
        pytest.mark.skipif(
            not torch.cuda.is_available(), reason="no CUDA device on this machine (CPU-only build)"
        ),
    ],
)
DEVICES = ["cpu", CUDA]
