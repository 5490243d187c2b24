"""The data side of a run (`bench.run.data`): one copy of a dataset, however it is asked for."""

from __future__ import annotations

import numpy as np
import pytest

import datasets
from bench.errors import ConfigError
from bench.run import data

SPEC = "synthetic:n=300:d=3:seed=11"


def test_a_registered_dataset_is_loaded_once_with_its_task_or_without():
    """The runner asks with the spec's task ("regression"), the suite's listing without one:
    one dataset object, one set of arrays (a 1e6-row set held once, not twice)."""
    assert data.load_dataset(SPEC, task="regression") is data.load_dataset(SPEC)
    key = (SPEC, None, None, 0.0, 0, False)
    with_task, without = data.problem_data(*key, "regression"), data.problem_data(*key, None)
    assert np.shares_memory(with_task.X_train, without.X_train)
    assert np.shares_memory(with_task.X_train, data.load_dataset(SPEC).X)


def test_a_task_the_dataset_does_not_have_is_still_an_error():
    data.load_dataset(SPEC)  # cached without a task: the wrong task must not slip through
    with pytest.raises(ConfigError, match="regression dataset; task='classification'"):
        data.load_dataset(SPEC, task="classification")


def test_a_wrong_task_is_an_error_before_the_dataset_is_loaded(monkeypatch):
    """The task of a registered dataset is read from the registry: asked with the wrong one,
    a (1e6-row, say) set is refused without being built first."""
    tasks = []
    real = datasets.load

    def spy(spec, **kw):
        tasks.append(kw.get("task"))
        return real(spec, **kw)

    monkeypatch.setattr(datasets, "load", spy)
    with pytest.raises(ConfigError, match="regression dataset; task='classification'"):
        data.load_dataset("synthetic:n=200:d=2:seed=5", task="classification")
    assert tasks == ["classification"]  # one call, refused; no build with task None first
