"""STCH against a float64 reference written from Lin et al. (2024) and the authors'
multi-task setting: the objective and its derivative (the logged weights) at extreme
losses and smoothings, the warm-up and its nadir vector inside fit, absent tasks, and
the state's `.keras` round trip."""

import keras
import numpy as np
import pytest
from keras import ops
from scipy.special import logsumexp

from keras_mtl.weighting import STCH
from weighting_utils import assert_round_trip, assert_weights_logged, fit_tiny, objective_and_gradient


def reference(losses, nadir, mu, present=None):
    """`K mu log sum_k exp(log(L_k / n_k) / mu)` over the present tasks, and its
    derivative in each `L_k` (the paper's smooth Tchebycheff function of the objectives
    `log L_k`, ideal point `log n_k`, unit preferences, times K; the 1e-20 floor of the
    authors' code is below these losses' rounding)."""
    losses, nadir = np.asarray(losses, "float64"), np.asarray(nadir, "float64")
    present = np.ones(len(losses), bool) if present is None else np.asarray(present)
    k = present.sum()
    scaled = np.log(losses[present] / nadir[present]) / mu
    objective = k * mu * logsumexp(scaled)
    weights = np.zeros(len(losses))
    weights[present] = k * np.exp(scaled - logsumexp(scaled)) / losses[present]
    return objective, weights


def after_warmup(k, nadir):
    method = STCH(mu=1.0, warmup_epochs=3)
    method.build((k,))
    method.loss_sum.assign(np.asarray(nadir, "float32") * 4)
    method.loss_count.assign(np.full(k, 4.0, "float32"))
    method.epochs_seen.assign(3.0)
    return method


@pytest.mark.parametrize("mu", [0.01, 0.1, 1.0, 10.0])
def test_objective_and_weights_match_the_reference(mu):
    rng = np.random.default_rng(0)
    for k in (2, 3, 7):
        nadir = np.exp(rng.normal(size=k) * 2)
        for losses in (np.exp(rng.normal(size=k) * 3), np.geomspace(1e-6, 1e4, k), np.full(k, 0.5)):
            method = after_warmup(k, nadir)
            method.mu = mu
            nadir32 = nadir.astype("float32").astype("float64")
            expected, expected_weights = reference(losses.astype("float32"), nadir32, mu)
            objective, weights, gradient = objective_and_gradient(method, losses)
            # Both within float32's rounding of the exponents `log(L / n) / mu`.
            exponents = np.abs(np.log(losses / nadir)).max() / mu
            assert abs(objective - expected) <= 1e-6 * k * mu * (1 + exponents), (objective, expected)
            np.testing.assert_allclose(weights, expected_weights, rtol=1e-5 + 1e-6 * exponents, atol=1e-30)  # float32 underflow
            np.testing.assert_allclose(gradient, weights, rtol=1e-5)


def test_small_mu_is_the_worst_normalised_task():
    # mu -> 0: the objective tends to K max_k log(L_k / n_k), all weight on that task.
    method = after_warmup(3, [1.0, 2.0, 4.0])
    method.mu = 1e-3
    objective, weights, _ = objective_and_gradient(method, [0.5, 3.0, 4.0])
    np.testing.assert_allclose(objective, 3 * np.log(1.5), rtol=1e-5)
    np.testing.assert_allclose(weights, [0.0, 3 / 3.0, 0.0], atol=1e-6)


def test_absent_tasks_are_left_out():
    method = after_warmup(4, [1.0, 2.0, 0.5, 3.0])
    losses, present = [0.7, 0.0, 0.2, 5.0], [True, False, True, True]
    objective, weights, gradient = objective_and_gradient(method, losses, present)
    expected, expected_weights = reference(np.array(losses) + (~np.array(present)), [1.0, 2.0, 0.5, 3.0], 1.0,
                                           present)
    np.testing.assert_allclose(objective, expected, rtol=1e-5)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-5)
    assert gradient[1] == 0.0
    # No task present: a zero objective and weights, finite.
    objective, weights, gradient = objective_and_gradient(method, np.zeros(4), [False] * 4)
    assert objective == 0.0 and np.all(weights == 0.0) and np.all(gradient == 0.0)


def test_warmup_is_the_sum_of_log_losses():
    method = STCH(warmup_epochs=2)
    method.build((3,))
    losses = np.array([0.3, 2.0, 1e-4])
    objective, weights, gradient = objective_and_gradient(method, losses)
    np.testing.assert_allclose(objective, np.log(losses).sum(), rtol=1e-5)
    np.testing.assert_allclose(weights, 1 / losses, rtol=1e-5)
    np.testing.assert_allclose(gradient, weights, rtol=1e-5)


def test_fit_measures_the_nadir_in_the_last_warmup_epoch_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    model, history = fit_tiny(STCH(mu=0.5, warmup_epochs=2), epochs=3)
    logs = history.history
    assert_weights_logged(history, 3)
    method = model.weighting
    assert float(method.epochs_seen.numpy()) == 3.0
    # The mean over the second epoch's four equal batches of each task's loss.
    expected = np.array([logs[f"{task}_loss"][1] for task in model.task_names])
    np.testing.assert_allclose(ops.convert_to_numpy(method.nadir()), expected, rtol=1e-5)
    assert np.all(np.isfinite(logs["loss"]))
    assert_round_trip(model, tmp_path)


@pytest.mark.parametrize("arguments", [{"mu": 0}, {"mu": -1.0}, {"warmup_epochs": -1}, {"warmup_epochs": 1.5}])
def test_rejects_bad_arguments(arguments):
    name, value = next(iter(arguments.items()))
    with pytest.raises((ValueError, TypeError), match=f"{name}={value}"):
        STCH(**arguments)
