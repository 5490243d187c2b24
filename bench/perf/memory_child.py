"""Peak memory of a full-batch run, in a fresh process: `python -m bench.perf.memory_child N`.

Runs `gd` through `runner.run` on an N x 100 float32 synthetic with no hold-out (the batch is
the whole dataset) and prints one JSON line: the process's peak resident set (VmHWM), the
dataset's bytes (X and Y) and the resident set of python + torch before any data existed. A
fresh process keeps the caller's memory out of the figure.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any

from bench.perf.cases.memory import memory_dataset
from bench.run.data import load_dataset
from bench.run.runner import run
from bench.run.spec import RunSpec

EPOCHS = 2


def rss_bytes(field: str) -> int:
    """A /proc/self/status field in bytes (VmRSS now, VmHWM the peak); getrusage elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def main(argv: list[str] | None = None) -> dict[str, Any]:
    n = int((argv if argv is not None else sys.argv[1:])[0])
    spec = RunSpec(
        dataset=memory_dataset(n),
        method="gd",
        hparams=(("lr", 1e-3),),
        batch_size=n,
        epochs=EPOCHS,
        holdout=0.0,
    )  # building a spec builds an optimizer, which loads the rest of torch.optim
    baseline = rss_bytes("VmRSS")
    result = run(spec)
    ds = load_dataset(spec.dataset, spec.targets, spec.features, spec.task)  # the run's own
    out = {
        "n": n,
        "epochs": EPOCHS,
        "status": result.summary["status"],
        "peak_rss_bytes": rss_bytes("VmHWM"),
        "baseline_rss_bytes": baseline,
        "dataset_bytes": int(ds.X.nbytes + ds.Y.nbytes),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
