"""DeepOBS quadratic_deep: the construction re-derived from DeepOBS's RandomState calls, the
spectrum, the optimum, and the published baselines against the rebuilt problem."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import datasets
from datasets import DatasetError
from datasets.deepobs import DEEPOBS_BASELINES, quadratic_deep


def _deepobs_random_rotation(rng, D):
    """DeepOBS's random_rotation, as written in its quadratic_deep.py (R starts as a list)."""
    t = 2 * np.pi * rng.uniform()
    R = [[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]]
    for d in range(2, D):
        v = rng.normal(size=(d + 1, 1))
        v = np.divide(v, np.sqrt(np.transpose(v).dot(v)))
        e = np.concatenate((np.array([[1.0]]), np.zeros((d, 1))), axis=0)
        x = np.divide((e - v), (np.sqrt(np.transpose(e - v).dot(e - v))))
        D_ = np.vstack([np.hstack([[[1.0]], np.zeros((1, d))]), np.hstack([np.zeros((d, 1)), R])])
        R = D_ - 2 * np.outer(x, np.transpose(x).dot(D_))
    return np.negative(R)


def _deepobs_hessian(variant):
    module_rng = np.random.RandomState(42)  # `rng = np.random.RandomState(42)` at module level
    # PyTorch set_up(): a fresh local rng for the eigenvalues; TensorFlow __init__: the module
    # rng, which the rotation then continues.
    rng = np.random.RandomState(42) if variant == "pytorch" else module_rng
    eigenvalues = np.concatenate((rng.uniform(0.0, 1.0, 90), rng.uniform(30.0, 60.0, 10)), axis=0)
    D = np.diag(eigenvalues)
    R = _deepobs_random_rotation(module_rng, D.shape[0])
    return np.matmul(np.transpose(R), np.matmul(D, R))


@pytest.fixture(scope="module", params=["pytorch", "tensorflow"])
def problem(request):
    return quadratic_deep(request.param)


def test_hessian_matches_deepobs_construction(problem):
    expected = _deepobs_hessian(problem.variant)
    np.testing.assert_array_equal(problem.hessian64, expected)
    np.testing.assert_array_equal(problem.hessian, expected.astype(np.float32))
    assert problem.hessian.dtype == np.float32
    assert problem.hessian.shape == (100, 100)


def test_data_match_deepobs_random_states(problem):
    train = np.float32(np.random.RandomState(42).normal(0.0, 0.6, (1000, 100)))
    test = np.float32(np.random.RandomState(43).normal(0.0, 0.6, (1000, 100)))
    np.testing.assert_array_equal(problem.X_train, train)
    np.testing.assert_array_equal(problem.X_test, test)
    assert problem.X_train.dtype == problem.X_test.dtype == np.float32


def test_the_two_variants_share_data_and_eigenvalues_but_not_the_rotation():
    torch_q, tf_q = quadratic_deep("pytorch"), quadratic_deep("tensorflow")
    np.testing.assert_array_equal(torch_q.eigenvalues, tf_q.eigenvalues)
    np.testing.assert_array_equal(torch_q.X_train, tf_q.X_train)
    assert np.abs(torch_q.hessian64 - tf_q.hessian64).max() > 1.0


def test_settings_and_start_point(problem):
    assert problem.name == "quadratic_deep"
    assert (problem.batch_size, problem.num_epochs, problem.noise_level) == (128, 100, 0.6)
    assert problem.theta0.dtype == np.float32
    np.testing.assert_array_equal(problem.theta0, np.ones(100))
    for a in (problem.hessian, problem.X_train, problem.theta0, problem.theta_star):
        with pytest.raises(ValueError, match="read-only"):
            a[0] = 0


def test_hessian_is_symmetric_positive_definite_with_the_documented_spectrum(problem):
    q64 = problem.hessian64
    assert np.abs(q64 - q64.T).max() <= 1e-14 * np.abs(q64).max()
    assert np.abs(problem.hessian - problem.hessian.T).max() <= 1e-6 * np.abs(q64).max()
    eig = np.linalg.eigvalsh(q64)
    np.testing.assert_allclose(eig, np.sort(problem.eigenvalues), rtol=1e-10, atol=1e-12)
    assert np.all((eig[:90] > 0) & (eig[:90] < 1))
    assert np.all((eig[90:] > 30) & (eig[90:] < 60))
    # The float32 matrix the loss uses is positive definite too.
    assert np.linalg.eigvalsh(problem.hessian.astype(np.float64))[0] > 0


def test_rotation_is_a_proper_rotation(problem):
    R = problem.rotation
    np.testing.assert_allclose(R @ R.T, np.eye(100), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-9)


def test_loss_and_gradient_match_deepobs_net_under_autograd(problem):
    # net_quadratic_deep.forward: q = theta - x; 0.5 * diag(q @ Q @ q^T); then the batch mean.
    Q = torch.tensor(problem.hessian, dtype=torch.float64)
    x = torch.tensor(problem.X_train[:128], dtype=torch.float64)
    theta = torch.ones(100, dtype=torch.float64, requires_grad=True)
    q = theta - x
    loss = (0.5 * torch.diag(torch.mm(q, torch.mm(Q, q.T)))).mean()
    loss.backward()
    theta0 = problem.theta0
    assert problem.loss(theta0, problem.X_train[:128]) == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(
        problem.gradient(theta0, problem.X_train[:128]), theta.grad.numpy(), rtol=1e-10
    )


def test_optimum_is_the_training_mean_and_a_minimiser(problem):
    X = problem.X_train
    star = problem.theta_star
    np.testing.assert_allclose(star, X.astype(np.float64).mean(axis=0), rtol=0, atol=0)
    grad0 = np.linalg.norm(problem.gradient(problem.theta0, X))
    assert np.linalg.norm(problem.gradient(star, X)) <= 1e-12 * grad0
    rng = np.random.default_rng(0)
    for scale in (1e-3, 1e-1, 1.0):
        for _ in range(5):
            assert problem.loss(star + scale * rng.normal(size=100), X) > problem.train_loss_star


def test_optimal_losses_by_an_independent_formula(problem):
    # At the mean, the loss is 0.5 tr(Q S) with S the (biased) sample covariance.
    Q = problem.hessian.astype(np.float64)
    for X, value in ((problem.X_train, problem.train_loss_star),):
        S = np.cov(X.astype(np.float64), rowvar=False, bias=True)
        assert value == pytest.approx(0.5 * np.trace(Q @ S), rel=1e-10)
    # Test loss at the training mean: 0.5 tr(Q S_test) + 0.5 d^T Q d, d the mean shift.
    Xt = problem.X_test.astype(np.float64)
    shift = problem.theta_star - Xt.mean(axis=0)
    S_test = np.cov(Xt, rowvar=False, bias=True)
    expected = 0.5 * np.trace(Q @ S_test) + 0.5 * shift @ Q @ shift
    assert problem.test_loss_star == pytest.approx(expected, rel=1e-10)
    assert problem.initial_train_loss > 2 * problem.train_loss_star


def test_expected_loss_uses_the_trace_of_the_eigenvalues(problem):
    ones = np.ones(100)
    Q = problem.hessian.astype(np.float64)
    trace = problem.eigenvalues.sum()
    assert problem.expected_loss_star == pytest.approx(0.5 * 0.36 * trace, rel=1e-6)
    assert problem.expected_loss(ones) == pytest.approx(
        0.5 * ones @ Q @ ones + 0.5 * 0.36 * trace, rel=1e-6
    )
    # The sample losses estimate it: 1000 points, so within a few percent.
    assert problem.initial_test_loss == pytest.approx(problem.expected_loss(ones), rel=0.05)


def test_evaluated_loss_averages_the_first_whole_batches(problem):
    losses = problem.losses(problem.theta0, problem.X_test)
    assert problem.evaluated_loss(problem.theta0, problem.X_test) == pytest.approx(
        losses[:896].mean(), rel=1e-14
    )


def test_published_baselines_belong_to_the_tensorflow_variant():
    tf_start = quadratic_deep("tensorflow").evaluated_loss(np.ones(100), quadratic_deep().X_test)
    torch_start = quadratic_deep("pytorch").evaluated_loss(np.ones(100), quadratic_deep().X_test)
    for run in DEEPOBS_BASELINES:
        # float32 arithmetic in TensorFlow against float64 here: agreement to ~1e-8.
        assert run.initial_test_loss == pytest.approx(tf_start, rel=1e-7)
        assert abs(run.initial_test_loss - torch_start) > 100


def test_published_baselines_lie_above_the_best_possible_test_loss():
    problem = quadratic_deep("tensorflow")
    evaluated = problem.X_test[:896]
    floor = problem.loss(evaluated.astype(np.float64).mean(axis=0), evaluated)
    assert {run.optimizer for run in DEEPOBS_BASELINES} == {"SGD", "Momentum", "Adam"}
    for run in DEEPOBS_BASELINES:
        assert floor < run.final_test_loss < run.initial_test_loss
        assert run.final_test_loss < floor + 1.0  # all three converged close to the optimum
        assert run.source.startswith("fsschneider/DeepOBS deepobs/baselines/quadratic_deep/")
        assert math.isfinite(run.learning_rate)
        assert run.learning_rate > 0


def test_unknown_variant():
    with pytest.raises(DatasetError, match="unknown variant 'jax'; known: pytorch, tensorflow"):
        datasets.quadratic_deep("jax")
