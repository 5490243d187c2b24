"""The tasks beyond regression, each checked against an independent computation, and the
regression path checked unchanged against numbers computed on main before tasks existed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

import datasets
from bench.run import tasks
from bench.run.config import DEFAULT_SUITE, suite_from_toml
from bench.run.data import device_tensors, problem_data
from bench.run.runner import run, shuffle_seed
from bench.run.spec import RunSpec

# ----------------------------------------------------------------------------------------------
# Regression: unchanged


# Computed with main's code at 0e857e1 (before tasks): the default suite's run of each method
# on each problem, seed 1, scratch: run id, init hash, final train and hold-out loss (hex),
# loss* (hex; equal to ~1e-13 relative, see below), steps per epoch.
MAIN = [
    ("crops15", "gd", "gd-scratch-cpu-s1-7accbfd0", "b4dc06c55a585470", "0x1.1c40a2p+9",
     "0x1.095d96p+10", "0x1.69602c059e9a9p-1", 1),
    ("crops15", "minibatch", "minibatch-scratch-cpu-s1-5ee84e3e", "b4dc06c55a585470",
     "0x1.6def7ep+7", "0x1.2f624cp+8", "0x1.69602c059e9a9p-1", 3),
    ("crops15", "adam", "adam-scratch-cpu-s1-b3a7b77f", "b4dc06c55a585470", "0x1.ad3448p+2",
     "0x1.1dc3c4p+3", "0x1.69602c059e9a9p-1", 3),
    ("diabetes", "minibatch", "minibatch-scratch-cpu-s1-a7063b51", "cd1a7fd45133bb15",
     "0x1.5d24p+11", "0x1.a529ep+11", "0x1.598034e3f348ep+11", 12),
    ("linnerud", "adam", "adam-scratch-cpu-s1-e28ec5e4", "337c32881b16d532", "0x1.1b9856p+9",
     "0x1.fb1768p+8", "0x1.60d5c78875e35p+7", 4),
    ("crops15-mlp", "momentum", "momentum-scratch-cpu-s1-6977010c", "4938a73718a3e41c",
     "0x1.021b02p+0", "0x1.a8244p+1", None, 3),
]  # fmt: skip


@pytest.mark.parametrize(
    ("problem", "method", "run_id", "init", "train", "hold", "star", "steps"), MAIN
)
def test_regression_numbers_are_bitwise_those_of_main(
    problem, method, run_id, init, train, hold, star, steps
):
    suite = suite_from_toml(DEFAULT_SUITE)
    spec = suite.spec_for(suite.problem(problem), method, "scratch", "cpu", 1)
    result = run(spec)
    last = result.rows[-1]
    assert (spec.run_id, last["init_hash"]) == (run_id, init)
    assert (last["train_loss"], last["holdout_loss"]) == (float.fromhex(train), float.fromhex(hold))
    assert result.summary["steps_per_epoch"] == steps
    if star is None:
        assert math.isnan(result.summary["loss_star"])
    else:
        # loss* is a float64 least-squares solve through numpy's BLAS, whose kernels differ by
        # CPU (1 ulp apart on an AMD EPYC against the machine these numbers came from); the
        # torch losses above are bitwise on both.
        assert result.summary["loss_star"] == pytest.approx(float.fromhex(star), rel=1e-13)
    assert math.isnan(last["train_accuracy"])
    assert math.isnan(last["holdout_accuracy"])


# ----------------------------------------------------------------------------------------------
# Classification


def test_cross_entropy_and_accuracy_match_numpy():
    task = tasks.get("classification")
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 4, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 4, (50,), generator=gen)
    z = logits.numpy()
    log_softmax = z - z.max(1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(1, keepdims=True))
    expected = -log_softmax[np.arange(50), labels.numpy()].mean()
    assert float(task.loss(logits, labels)) == pytest.approx(expected, rel=1e-12)
    accuracy = (z.argmax(1) == labels.numpy()).mean()
    assert float(task.extra_metrics(logits, labels)["accuracy"]) == accuracy


def test_classification_labels_stay_int64_and_the_model_has_one_output_per_class():
    spec = RunSpec(dataset="digits", method="gd", hparams=(("lr", 0.1),), task="classification",
                   holdout=0.2, standardize=True)  # fmt: skip
    X, Y, _Xh, Yh = device_tensors(spec.problem_key, "cpu", "float64")
    assert (X.dtype, Y.dtype, Y.shape, Yh.dtype) == (
        torch.float64,
        torch.int64,
        (1438,),
        torch.int64,
    )
    data = problem_data(*spec.problem_key)
    assert (data.d, data.k, math.isnan(data.loss_star)) == (64, 10, True)
    assert "no closed-form optimum" in data.optimum_note


def test_logistic_regression_on_digits_is_close_to_scikit_learn():
    """Same split, same standardisation: hold-out accuracy within 3 points of sklearn's
    LogisticRegression (whose default L2 penalty the benchmark's loss does not have)."""
    spec = RunSpec(dataset="digits", method="adam", hparams=(("lr", 0.05),), batch_size=64,
                   epochs=20, task="classification", holdout=0.2, standardize=True)  # fmt: skip
    result = run(spec)
    ours = result.summary["final_holdout_accuracy"]
    data = problem_data(*spec.problem_key)
    sklearn = LogisticRegression(max_iter=5000).fit(data.X_train, data.Y_train)
    theirs = sklearn.score(data.X_hold, data.Y_hold)
    assert (round(ours, 4), round(theirs, 4)) == (0.9554, 0.9777)  # the numbers quoted
    assert abs(ours - theirs) <= 0.03
    rows = result.rows
    assert all(0 <= r["train_accuracy"] <= 1 and 0 <= r["holdout_accuracy"] <= 1 for r in rows)
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]


# ----------------------------------------------------------------------------------------------
# DeepOBS quadratic_deep


@pytest.mark.parametrize("variant", ["pytorch", "tensorflow"])
def test_quadratic_loss_matches_the_deepobs_problem_in_float64(variant):
    dataset = "quadratic_deep" + ("" if variant == "pytorch" else ":variant=tensorflow")
    spec = RunSpec(dataset=dataset, method="minibatch", model="theta", task="quadratic_deep",
                   hparams=(("lr", 0.01),), batch_size=128, dtype="float64",
                   holdout=896 / 1896)  # fmt: skip
    task = tasks.get("quadratic_deep")
    data = task.data(spec)
    qp = datasets.quadratic_deep(variant)
    np.testing.assert_array_equal(data.X_train, qp.X_train)
    np.testing.assert_array_equal(data.X_hold, qp.X_test[:896])
    theta = np.random.default_rng(0).normal(size=100)
    loss = task.loss_for(spec, data)
    out = torch.tensor(theta).expand(1000, 100)
    ours = float(loss(out, torch.from_numpy(qp.X_train.astype(np.float64))))
    assert ours == pytest.approx(qp.loss(theta, qp.X_train), rel=1e-12)
    assert task.optimum(spec, data) == qp.train_loss_star


def test_quadratic_run_drops_the_last_batch_and_starts_every_method_at_ones():
    """Two epochs of SGD (float64) against a hand-written loop: shuffled, 7 batches of 128,
    the last 104 points of each permutation dropped; hold-out loss = DeepOBS's evaluated loss."""
    qp = datasets.quadratic_deep("tensorflow")
    common = dict(dataset="quadratic_deep:variant=tensorflow", model="theta", batch_size=128,
                  task="quadratic_deep", epochs=2, dtype="float64", holdout=896 / 1896)  # fmt: skip
    result = run(RunSpec(method="minibatch", hparams=(("lr", 0.01),), **common))
    assert result.summary["steps_per_epoch"] == 7
    assert result.rows[0]["holdout_loss"] == pytest.approx(
        qp.evaluated_loss(qp.theta0, qp.X_test), rel=1e-12
    )
    assert result.rows[0]["holdout_loss"] == pytest.approx(353.44676426478793, rel=1e-6)
    Q = torch.tensor(qp.hessian, dtype=torch.float64)
    X = torch.tensor(qp.X_train, dtype=torch.float64)
    theta = torch.ones(100, dtype=torch.float64)
    gen = torch.Generator().manual_seed(shuffle_seed("quadratic_deep:variant=tensorflow", 0, 128))
    for _ in range(2):
        perm = torch.randperm(1000, generator=gen)
        for i in range(7):
            q = theta - X[perm[i * 128 : (i + 1) * 128]]
            grad = 0.5 * (q @ (Q + Q.T)).mean(0)  # the gradient of the mean of q Q qᵀ / 2
            theta = theta - 0.01 * grad
    expected = 0.5 * (((theta - X) @ Q) * (theta - X)).sum(1).mean()
    assert result.rows[-1]["train_loss"] == pytest.approx(float(expected), rel=1e-10)
    adam = run(RunSpec(method="adam", hparams=(("lr", 0.01),), **common))
    assert adam.rows[0]["init_hash"] == result.rows[0]["init_hash"]


# ----------------------------------------------------------------------------------------------
# 2-D functions


@pytest.mark.parametrize("name", datasets.functions_2d())
def test_function2d_losses_are_the_function_at_the_recorded_path(name):
    fn = datasets.function_2d(name)
    spec = RunSpec(dataset=name, method="momentum", model="theta", task="function2d",
                   hparams=(("lr", fn.lr / 10), ("momentum", 0.5)), epochs=20,
                   dtype="float64")  # fmt: skip
    result = run(spec)
    rows = result.rows
    start = np.float32(fn.start).astype(np.float64)
    assert (rows[0]["theta_0"], rows[0]["theta_1"]) == tuple(start)
    for row in rows:
        xy = np.array([row["theta_0"], row["theta_1"]])
        assert row["train_loss"] == pytest.approx(float(fn.f(xy)), rel=1e-12)
    assert result.summary["loss_star"] == fn.minimum
    assert result.summary["steps_per_epoch"] == 1
    assert result.summary["n_holdout"] == 0
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]


def test_default_suite_runs_every_method_on_the_2d_functions_once_at_full_batch():
    suite = suite_from_toml(DEFAULT_SUITE)
    specs = [s for s in suite.expand() if s.task == "function2d"]
    assert {s.dataset for s in specs} == {"rosenbrock", "beale", "himmelblau"}
    assert {s.seed for s in specs} == {0}
    assert {s.batch_size for s in specs} == {1}
    assert len(specs) == 3 * len(suite.methods) * len(suite.impls)
    assert {s.problem for s in specs} == {"rosenbrock", "beale", "himmelblau"}
    classification = [s for s in suite.expand() if s.task == "classification"]
    assert {s.dataset for s in classification} == {"breast_cancer"}
