"""perf case 1. Optimizer step."""

from __future__ import annotations

import torch

import optimizers
from bench.perf.cases.common import Case, Scale, interleaved_case
from bench.perf.timing import AT_MOST_1, Interleaved, Row, Target, compare
from bench.run.device import get_backend

#: Parameter shapes: the seeds' nn.Linear(3, 2); an MLP 100 -> 30 -> 1 (3,061 parameters); five
#: 447 x 447 layers with biases (1,001,280 parameters in 10 tensors).
PARAM_SETS: dict[str, tuple[tuple[int, ...], ...]] = {
    "tiny": ((2, 3), (2,)),
    "small": ((30, 100), (30,), (1, 30), (1,)),
    "large": ((447, 447), (447,)) * 5,
}
STEP_TARGETS = {"tiny": AT_MOST_1, "small": AT_MOST_1, "large": Target("<=", 1.10)}
TORCH_IMPLS = ("torch", "torch-foreach", "torch-fused")


def _params(size: str, device: str) -> list[torch.Tensor]:
    """Seeded parameters with fixed gradients (every impl gets equal copies)."""
    gen = torch.Generator().manual_seed(0)
    params = []
    for shape in PARAM_SETS[size]:
        p = torch.randn(shape, generator=gen).to(device).requires_grad_()
        p.grad = torch.randn(shape, generator=gen).mul_(1e-2).to(device)
        params.append(p)
    return params


def step_case(method: str, size: str, device: str, scale: Scale) -> Case:
    backend = get_backend(device)
    opts = {
        impl: optimizers.build(method, _params(size, device), impl=impl)
        for impl in ("scratch", *TORCH_IMPLS)
    }
    timing = Interleaved(
        {impl: opt.step for impl, opt in opts.items()},
        backend=backend,
        warmup=scale.warmup,
        min_sample_s=scale.min_sample_s,
    )
    n_params = sum(p.numel() for p in opts["scratch"].param_groups[0]["params"])
    detail = f"{n_params} params in {len(PARAM_SETS[size])} tensors"

    def rows() -> list[Row]:
        labels = dict(case="1-step", method=method, size=size, device=device, detail=detail)
        out = [
            compare(
                timing,
                "scratch",
                "torch",
                target=STEP_TARGETS[size],
                impl="scratch",
                candidate="scratch step",
                baseline="torch step (for-loop)",
                **labels,
            )
        ]
        for impl in TORCH_IMPLS[1:]:
            out.append(
                compare(
                    timing,
                    impl,
                    "torch",
                    target=None,
                    impl=impl,
                    candidate=f"{impl} step",
                    baseline="torch step (for-loop)",
                    **labels,
                )
            )
        fastest = min(TORCH_IMPLS, key=lambda impl: timing.stats(impl).median)
        out.append(
            compare(
                timing,
                "scratch",
                fastest,
                target=None,
                impl="scratch",
                candidate="scratch step",
                baseline=f"fastest torch: {fastest}",
                **labels,
            )
        )
        return out

    return interleaved_case(
        "1-step", timing, rows, scale.rounds, method=method, size=size, device=device
    )
