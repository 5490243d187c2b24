"""Fair comparisons: the sweep's config and protocol (grid, selection on hold-out, reruns)."""

from bench.sweep.config import SweepConfig
from bench.sweep.protocol import SweepResult, grid_specs, rerun_specs, run_sweep, select

__all__ = ["SweepConfig", "SweepResult", "grid_specs", "rerun_specs", "run_sweep", "select"]
