"""The device seam: where tensors live and how an epoch is timed.

Everything device-specific the runner needs goes through a `Backend`: placement (`torch_device`),
a barrier (`synchronize`) and a `Stopwatch` for the timed region. On CUDA, kernels run
asynchronously, so a host clock read without a barrier would time the launches, not the work;
the CUDA stopwatch records events on the stream and waits for the end event before reading.
Tests drive the runner with a recording backend on CPU.

Threads: torch's intra-op thread count changes epoch times (on tiny problems a second thread
costs more in hand-off than it saves) and can change the order of float reductions, i.e. the
losses. Every executor pins it (`set_threads`, `DEFAULT_THREADS` unless told otherwise), in the
serial path and in every worker alike, so the same spec gives the same numbers wherever it runs.

CPU time: `cpu_clock` is `time.process_time`, the CPU time of the whole process, read around the
timed region next to the wall clock. The process clock (not `thread_time`) because with more
than one intra-op thread the work runs partly on torch's pool threads, which `thread_time` would
miss, so an undisturbed multi-threaded epoch would look descheduled; the process clock also counts
the few background threads of a Dask worker, which only makes "wall far above CPU" rarer (the
detector errs toward not flagging). On CUDA the host's CPU time measures launches and waiting,
not the device's work: `Backend.cpu_time_meaningful` is False there and no epoch is judged by it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import torch

from bench.errors import ConfigError

KNOWN_DEVICES = ("cpu", "cuda")
# One intra-op thread per run: measured side by side on a shared 2-core machine, a second thread
# made no epoch of this project's problems more than 4% faster (tables, diabetes, a 200k x 100
# synthetic) and the 500-row synthetic 3-19x slower while the other core was busy; a parallel
# executor runs one single-threaded run per core anyway (README, "Timings you can trust").
DEFAULT_THREADS = 1
cpu_clock = time.process_time


def set_threads(n: int) -> int:
    """Pin torch's intra-op threads to `n` (>= 1); returns the count it had before."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"threads must be an integer >= 1, got {n!r}")
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    return before


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """`set_threads(n)` for the duration of the block, then the count it had before."""
    before = set_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


class Stopwatch(Protocol):
    def start(self) -> None: ...
    def stop(self) -> float:
        """Seconds since start(), with all work queued in between finished."""
        ...


class Backend(Protocol):
    name: str
    torch_device: torch.device
    cpu_time_meaningful: bool  # does the host's CPU time measure the epoch's work?

    def synchronize(self) -> None: ...
    def stopwatch(self) -> Stopwatch: ...


class PerfCounterStopwatch:
    """Host clock; correct on CPU, where every op has finished when it returns."""

    def __init__(self) -> None:
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def stop(self) -> float:
        return time.perf_counter() - self._t0


class CudaEventStopwatch:
    """CUDA events on the current stream: the GPU's own clock, read after the end event."""

    def __init__(self, device: torch.device) -> None:
        self._device = device
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def start(self) -> None:
        # Work queued before the timed region (evaluation, shuffling set-up) must not leak in.
        torch.cuda.synchronize(self._device)
        self._start.record()

    def stop(self) -> float:
        self._end.record()
        self._end.synchronize()
        return self._start.elapsed_time(self._end) / 1000.0


class CpuBackend:
    name = "cpu"
    torch_device = torch.device("cpu")
    cpu_time_meaningful = True

    def synchronize(self) -> None:
        return None

    def stopwatch(self) -> Stopwatch:
        return PerfCounterStopwatch()


class CudaBackend:
    name = "cuda"
    torch_device = torch.device("cuda")
    cpu_time_meaningful = False  # the host launches and waits; the work is on the device

    def synchronize(self) -> None:
        torch.cuda.synchronize(self.torch_device)

    def stopwatch(self) -> Stopwatch:
        return CudaEventStopwatch(self.torch_device)


def cuda_available() -> bool:
    return torch.cuda.is_available()


def get_backend(name: str) -> Backend:
    """The backend for 'cpu' or 'cuda'; asking for CUDA without a GPU is a ConfigError."""
    if name == "cpu":
        return CpuBackend()
    if name == "cuda":
        if not cuda_available():
            raise ConfigError("device 'cuda' requested but no CUDA device is available")
        return CudaBackend()
    raise ConfigError(f"unknown device {name!r}; known: {', '.join(KNOWN_DEVICES)}, auto")


def resolve_devices(text: str) -> tuple[str, ...]:
    """'auto' -> cpu plus cuda when present; otherwise a comma list, each checked."""
    if text.strip() == "auto":
        return ("cpu", "cuda") if cuda_available() else ("cpu",)
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    if not names:
        raise ConfigError("--devices is empty; use cpu, cuda or auto")
    for n in names:
        get_backend(n)
    return names
