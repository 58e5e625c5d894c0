"""FairGrad against a float64 reference written from Ban and Ji (2024), equation 4, on
easy, ill-conditioned and degenerate task gradients; its closed forms; training."""

import numpy as np
import pytest

import gradient_references as ref
from keras_mtl.weighting import FairGrad, NashMTL
from keras_mtl.weighting.min_norm import hull_tolerance
from weighting_utils import (assert_absent_task_left_out, assert_round_trip, assert_weights_logged, fit_tiny,
                             float64_available, reference_tolerance, solve_gradients)

ALPHAS = (0.5, 1.0, 2.0, 5.0)
# One alpha in the fast tier (each FairGrad compiles its own solver), all in the slow.
SWEPT = [2.0] + [pytest.param(alpha, marks=pytest.mark.slow) for alpha in ALPHAS if alpha != 2.0]


def check(alpha, cases):
    """FairGrad(alpha) on `cases` ((name, grads, present)) against the reference on a
    factor of the Gramian it saw: the weights, 0 for absent and zero-gradient tasks,
    and a small residual; where 0 is in the convex hull (no solution), the previous
    weights (all 1) and an infinite residual."""
    methods = {}
    for name, grads, present in cases:
        method = methods.setdefault(len(grads), FairGrad(alpha=alpha))
        if method.built:
            method.previous.assign(np.ones(len(grads)))  # the initial weights, as a fresh method's
        _, weights, residual, factor = solve_gradients(method, grads, present)
        norms = np.linalg.norm(factor, axis=1)
        usable = present & (norms > 1e-6 * norms.max())
        expected = ref.fairgrad(factor[usable], alpha, hull_floor=hull_tolerance("float32"))
        if expected is None:
            np.testing.assert_array_equal(weights[present], 1.0, err_msg=name)
            assert residual == np.inf, name
            continue
        assert np.all(weights[~usable] == 0.0), (name, weights)
        # In float32 (JAX without x64) the cosines' rounding, divided by the distance
        # from 0 to the hull of the unit gradients, moves the weights.
        tolerance = (reference_tolerance() if float64_available()
                     else max(1e-3, 10 * np.finfo("float32").eps / ref.unit_hull_distance2(factor[usable])))
        assert ref.relative_error(weights[usable], expected) < tolerance, (name, weights, expected)
        assert residual < tolerance, (name, residual)


def test_orthogonal_gradients_by_hand():
    # G G^T = diag(n^2): n_k^2 w_k = w_k^(-1/alpha), so w_k = n_k^(-2 alpha / (1 + alpha)).
    grads = np.array([[3.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 20.0]], "float32")
    for alpha in (0.5, 2.0):
        _, weights, residual, _ = solve_gradients(FairGrad(alpha=alpha), grads)
        np.testing.assert_allclose(weights, np.array([3.0, 0.5, 20.0]) ** (-2 * alpha / (1 + alpha)), rtol=1e-5)
        assert residual < 1e-6


def test_alpha_one_is_nash_mtls_equation():
    grads = ref.scaled_family(5, 3, 100.0)
    fair = solve_gradients(FairGrad(alpha=1.0), grads)[1]
    nash = solve_gradients(NashMTL(max_norm=0.0), grads)[1]
    np.testing.assert_allclose(fair, nash, rtol=1e-5)


@pytest.mark.parametrize("alpha", SWEPT)
def test_matches_the_reference_on_ill_conditioned_and_opposed_gradients(alpha):
    check(alpha, [(name, grads, np.ones(len(grads), bool)) for name, grads in ref.stress_cases()[::2]])


@pytest.mark.parametrize("alpha", SWEPT)
def test_matches_the_reference_on_degenerate_gradients(alpha):
    check(alpha, ref.hard_cases())


def test_without_a_solution_keeps_the_previous_weights():
    method = FairGrad(alpha=2.0)
    good = ref.scaled_family(2, 1, 3.0)
    first = solve_gradients(method, good)[1]
    g = good[0]
    weights, residual = solve_gradients(method, np.stack([g, -g]))[1:3]
    np.testing.assert_allclose(weights, first, rtol=1e-6)
    assert residual == np.inf


def test_absent_task_is_left_out():
    assert_absent_task_left_out(lambda: FairGrad(alpha=2.0))


@pytest.mark.parametrize("arguments", [{"alpha": 0}, {"alpha": -1.0}, {"max_iterations": 0}])
def test_rejects_bad_arguments(arguments):
    name, value = next(iter(arguments.items()))
    with pytest.raises(ValueError, match=f"{name}={value}"):
        FairGrad(**arguments)


@pytest.mark.parametrize("gradient_mode", ["representation", pytest.param("shared_parameters", marks=pytest.mark.slow)])
def test_fit_trains_and_round_trips(gradient_mode, tmp_path):
    model, history = fit_tiny(FairGrad(alpha=2.0, gradient_mode=gradient_mode), epochs=2)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert_weights_logged(history, 2)
    assert_round_trip(model, tmp_path)
