"""perf case 4. Full-batch GD vs its two matrix products."""

from __future__ import annotations

import torch

from bench.perf.cases.common import (
    Case,
    Scale,
    big_dataset,
    check_finite,
    dataset_label,
    interleaved_case,
    runner_epoch,
    trainers,
)
from bench.perf.timing import Interleaved, Row, Target, compare

GD_TARGET = Target("<=", 1.30)


def gd_limit_case(device: str, scale: Scale) -> Case:
    dataset = big_dataset(scale)
    (t,) = trainers(dataset, "gd", device, lr=1e-3, copies=1)
    weight = t.model.weight.detach().clone()  # k x d
    grad_out = torch.randn(t.n, weight.shape[0], device=t.X.device)  # n x k

    def matmuls() -> None:
        """The epoch's unavoidable work: the forward X W^T and the weight gradient G^T X."""
        torch.mm(t.X, weight.t())
        torch.mm(grad_out.t(), t.X)

    timing = Interleaved(
        {"gd": runner_epoch(t), "matmuls": matmuls},
        backend=t.backend,
        warmup=scale.warmup,
        min_sample_s=10 * scale.min_sample_s,
    )
    size = f"{dataset_label(t, dataset)} full batch"

    def rows() -> list[Row]:
        check_finite(t)
        return [
            compare(
                timing,
                "gd",
                "matmuls",
                target=GD_TARGET,
                case="4-gd-limit",
                method="gd",
                impl="scratch",
                size=size,
                device=device,
                candidate="runner GD epoch",
                baseline="X W^T + G^T X",
                detail=f"float32, {t.n} training rows x {t.X.shape[1]}",
            )
        ]

    return interleaved_case("4-gd-limit", timing, rows, scale.rounds, size=size, device=device)
