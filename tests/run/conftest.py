"""What the tests of bench.run share: one Dask LocalCluster for the session (starting one takes
seconds), and a deadline so that a hung cluster fails its test instead of the whole session."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

DEADLINE_S = 180


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    def expire(signum, frame):
        raise TimeoutError(f"over the test's deadline of {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """2 single-threaded workers on 127.0.0.1 (a test that kills one waits for it to be back)."""
    distributed = pytest.importorskip("distributed", reason="the dask executor needs distributed")
    with deadline(DEADLINE_S):
        local = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.ERROR,
        )
    try:
        yield local
    finally:
        with deadline(DEADLINE_S):
            local.close()
