"""perf case 2. Harness overhead."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.perf.cases.common import (
    Case,
    Scale,
    check_finite,
    dataset_label,
    interleaved_case,
    runner_epoch,
    trainers,
)
from bench.perf.timing import Interleaved, Row, Target, compare

HARNESS_TARGET = Target("<=", 1.10)


def harness_case(which: str, device: str, scale: Scale) -> Case:
    """`crops15` with B = 1 (`sgd`), or a d = 100 synthetic with B = 128 (`minibatch`)."""
    if which == "crops15":
        dataset, method, batch_size, lr = "crops15", "sgd", 1, 1e-5
    else:
        dataset, method, batch_size, lr = (
            f"synthetic:n={scale.harness_n}:d=100:k=1",
            "minibatch",
            128,
            1e-3,
        )
    run_t, hand_t = trainers(dataset, method, device, lr=lr, batch_size=batch_size)
    gen = torch.Generator().manual_seed(1)

    def hand_loop() -> None:
        """The textbook loop: reshuffle, index each batch by a slice of the permutation."""
        model, opt, X, Y, bs, n = hand_t.model, hand_t.opt, hand_t.X, hand_t.Y, batch_size, hand_t.n
        perm = torch.randperm(n, generator=gen).to(X.device)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            opt.zero_grad()
            F.mse_loss(model(X[idx]), Y[idx]).backward()
            opt.step()

    timing = Interleaved(
        {"runner": runner_epoch(run_t), "hand": hand_loop},
        backend=run_t.backend,
        warmup=scale.warmup,
        min_sample_s=10 * scale.min_sample_s,
    )
    size = f"{dataset_label(run_t, dataset)} B={batch_size}"

    def rows() -> list[Row]:
        check_finite(run_t, hand_t)
        return [
            compare(
                timing,
                "runner",
                "hand",
                target=HARNESS_TARGET,
                case="2-harness",
                method=method,
                impl="scratch",
                size=size,
                device=device,
                candidate="runner epoch",
                baseline="hand-written loop",
                detail=f"{run_t.n} training rows, {-(-run_t.n // batch_size)} steps per epoch",
            )
        ]

    return interleaved_case("2-harness", timing, rows, scale.rounds, size=size, device=device)
