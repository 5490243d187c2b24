"""perf case 5. Scaling with n."""

from __future__ import annotations

from bench.perf.cases.common import (
    Case,
    Scale,
    check_finite,
    interleaved_case,
    runner_epoch,
    trainers,
)
from bench.perf.timing import Interleaved, Row, Target, above_floor, judged, loglog_slope
from bench.run.device import get_backend

SCALING_BATCH = 128
SLOPE_TARGET = Target("to", 0.9, 1.1)


def scaling_case(method: str, device: str, scale: Scale) -> Case:
    """Epoch time of `gd` (full batch) or `minibatch` (B = 128) for each n, interleaved."""
    batch = None if method == "gd" else SCALING_BATCH
    ts = {}
    for n in scale.scaling_ns:
        dataset = f"synthetic:n={n}:d=100:k=1:dtype=float32"
        (ts[n],) = trainers(dataset, method, device, lr=1e-3, batch_size=batch, copies=1)
    timing = Interleaved(
        {f"n={n}": runner_epoch(t) for n, t in ts.items()},
        backend=get_backend(device),
        warmup=0,
    )

    def rows() -> list[Row]:
        check_finite(*ts.values())
        ns = list(ts)
        medians = [timing.stats(f"n={n}").median for n in ns]
        first = above_floor(ns, medians)
        slope, _ = loglog_slope(ns[first:], medians[first:])
        label = "full batch" if batch is None else f"B={batch}"
        out = []
        for n, t in ts.items():
            s = timing.stats(f"n={n}")
            out.append(
                Row(
                    case="5-scaling",
                    method=method,
                    impl="scratch",
                    size=f"n={n}",
                    device=device,
                    median=s.median,
                    iqr=s.iqr,
                    unit="s",
                    rounds=timing.rounds,
                    ratio=float("nan"),
                    ratio_iqr=float("nan"),
                    target="",
                    met="",
                    metric="epoch time (a point of the curve)",
                    candidate="runner epoch",
                    baseline="",
                    baseline_median=float("nan"),
                    baseline_iqr=float("nan"),
                    detail=f"{t.n} training rows, {label}",
                )
            )
        target, met = judged(SLOPE_TARGET, slope)
        out.append(
            Row(
                case="5-scaling",
                method=method,
                impl="scratch",
                size=f"n={ns[first]}..{ns[-1]}",
                device=device,
                median=medians[-1],
                iqr=timing.stats(f"n={ns[-1]}").iqr,
                unit="s",
                rounds=timing.rounds,
                ratio=slope,
                ratio_iqr=float("nan"),
                target=target,
                met=met,
                metric=f"log-log slope of epoch time vs n, fitted for n >= {ns[first]}",
                candidate="runner epoch",
                baseline="",
                baseline_median=medians[0],
                baseline_iqr=timing.stats(f"n={ns[0]}").iqr,
                detail=f"{label}; median at the largest n; baseline = the smallest n's (floor)",
            )
        )
        return out

    rounds = scale.rounds if batch is None else scale.slow_rounds  # gd epochs are cheap
    return interleaved_case("5-scaling", timing, rows, rounds, method=method, device=device)
