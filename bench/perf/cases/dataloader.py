"""perf case 3. Batching: the runner vs the seeds' DataLoader loop."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

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

DATALOADER_TARGETS = {128: Target(">=", 2.0), 1024: Target(">=", 10.0)}


def dataloader_case(batch_size: int, device: str, scale: Scale) -> Case:
    dataset = big_dataset(scale)
    run_t, seed_t = trainers(dataset, "minibatch", device, lr=1e-3, batch_size=batch_size)
    loader = DataLoader(
        TensorDataset(seed_t.X, seed_t.Y),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(1),
    )

    def seeds_loop() -> None:
        """The notebooks' loop: DataLoader(TensorDataset(X, Y), batch_size, shuffle=True)."""
        model, opt = seed_t.model, seed_t.opt
        for xb, yb in loader:
            loss = F.mse_loss(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()

    timing = Interleaved(
        {"runner": runner_epoch(run_t), "dataloader": seeds_loop},
        backend=run_t.backend,
        warmup=0,
    )
    size = f"{dataset_label(run_t, dataset)} B={batch_size}"

    def rows() -> list[Row]:
        check_finite(run_t, seed_t)
        return [
            compare(
                timing,
                "runner",
                "dataloader",
                target=DATALOADER_TARGETS.get(batch_size),
                speedup=True,
                case="3-dataloader",
                method="minibatch",
                impl="scratch",
                size=size,
                device=device,
                candidate="runner epoch",
                baseline="DataLoader loop",
                detail=f"{run_t.n} training rows of a {scale.big_n}-row float32 synthetic",
            )
        ]

    return interleaved_case(
        "3-dataloader", timing, rows, scale.slow_rounds, size=size, device=device
    )
