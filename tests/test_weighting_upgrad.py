"""UPGrad against a float64 reference written from Quinton and Rey (2024), on easy,
ill-conditioned and degenerate task gradients; its defining properties; training."""

import numpy as np
import pytest

import gradient_references as ref
from keras_mtl.weighting import UPGrad
from weighting_utils import assert_absent_task_left_out, assert_weights_logged, check_dual_cone_method, fit_tiny, solve_gradients


def test_two_conflicting_gradients_by_hand():
    # g1 = (1, 0), g2 = (-1, 2); the dual cone is {x: x1 >= 0, -x1 + 2 x2 >= 0}.
    # g1 breaks the second constraint: its projection onto -x1 + 2 x2 = 0 is
    # g1 + g2 / 5 = (0.8, 0.4); g2 breaks the first: its projection onto x1 = 0 is
    # g2 + g1 = (0, 2). Their sum: weights (2, 1.2), direction (0.8, 2.4).
    grads = np.array([[1.0, 0.0], [-1.0, 2.0]], "float32")
    combined, weights, residual, _ = solve_gradients(UPGrad(), grads)
    np.testing.assert_allclose(weights, [2.0, 1.2], rtol=1e-6)
    np.testing.assert_allclose(combined, [0.8, 2.4], rtol=1e-6)
    assert residual < 1e-6


def test_without_conflicts_it_is_the_sum():
    rng = np.random.default_rng(0)
    grads = (np.abs(rng.normal(size=(4, 6))) + 0.1).astype("float32")
    _, weights, _, _ = solve_gradients(UPGrad(), grads)
    np.testing.assert_allclose(weights, 1.0, rtol=1e-6)


def test_matches_the_reference_on_ill_conditioned_and_opposed_gradients():
    check_dual_cone_method(UPGrad, ref.upgrad, ref.stress_cases())


@pytest.mark.parametrize("case", ref.hard_cases(), ids=[c[0] for c in ref.hard_cases()])
def test_matches_the_reference_on_degenerate_gradients(case):
    check_dual_cone_method(UPGrad, ref.upgrad, [case], present_cases=True)


def test_absent_task_is_left_out():
    assert_absent_task_left_out(UPGrad)


def test_rejects_a_negative_tolerance():
    with pytest.raises(ValueError, match="tolerance=-1"):
        UPGrad(tolerance=-1)


def test_fit_trains():
    _, history = fit_tiny(UPGrad(gradient_mode="representation"), epochs=2)
    assert np.all(np.isfinite(history.history["loss"]))
    assert_weights_logged(history, 2)
