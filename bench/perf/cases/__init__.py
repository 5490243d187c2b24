"""The cases of `nox -s perf`, one file each; `common` holds what they share."""

from bench.perf.cases.common import FULL, SCALES, SMALL, Case, Scale
from bench.perf.cases.cost_noise import (
    PHASE_TARGET,
    SPREAD_TARGET,
    cost_noise_case,
    cost_phase_case,
)
from bench.perf.cases.dask_stalls import DASK_TARGET, HIT_TARGET, dask_sweep_case, stall_case
from bench.perf.cases.dataloader import DATALOADER_TARGETS, dataloader_case
from bench.perf.cases.engines import (
    ENGINE_KS,
    ENGINE_TARGET,
    ENGINE_WORKLOADS,
    agreement_case,
    engine_case,
)
from bench.perf.cases.gd_limit import GD_TARGET, gd_limit_case
from bench.perf.cases.harness import HARNESS_TARGET, harness_case
from bench.perf.cases.memory import MEMORY_TARGET, memory_case, memory_dataset, run_memory_child
from bench.perf.cases.scaling import SCALING_BATCH, SLOPE_TARGET, scaling_case
from bench.perf.cases.step import PARAM_SETS, STEP_TARGETS, TORCH_IMPLS, step_case
from bench.perf.cases.sweep_engines import SWEEP_RATIO_TARGET, sweep_engines_case

__all__ = [
    "DASK_TARGET",
    "DATALOADER_TARGETS",
    "ENGINE_KS",
    "ENGINE_TARGET",
    "ENGINE_WORKLOADS",
    "FULL",
    "GD_TARGET",
    "HARNESS_TARGET",
    "HIT_TARGET",
    "MEMORY_TARGET",
    "PARAM_SETS",
    "PHASE_TARGET",
    "SCALES",
    "SCALING_BATCH",
    "SLOPE_TARGET",
    "SMALL",
    "SPREAD_TARGET",
    "STEP_TARGETS",
    "SWEEP_RATIO_TARGET",
    "TORCH_IMPLS",
    "Case",
    "Scale",
    "agreement_case",
    "cost_noise_case",
    "cost_phase_case",
    "dask_sweep_case",
    "dataloader_case",
    "engine_case",
    "gd_limit_case",
    "harness_case",
    "memory_case",
    "memory_dataset",
    "run_memory_child",
    "scaling_case",
    "stall_case",
    "step_case",
    "sweep_engines_case",
]
