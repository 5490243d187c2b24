"""Shared test settings: deterministic hypothesis, a device list that skips CUDA with a reason."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Derandomized so a run on a noisy CI machine sees exactly the examples seen here.
settings.register_profile(
    "optbench",
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("optbench")
