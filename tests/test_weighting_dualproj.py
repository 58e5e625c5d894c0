"""DualProj against a float64 reference written from Quinton and Rey (2024) and
Lopez-Paz and Ranzato (2017), on easy, ill-conditioned and degenerate task gradients;
its defining properties; training."""

import numpy as np
import pytest

import gradient_references as ref
from keras_mtl.weighting import DualProj
from weighting_utils import assert_absent_task_left_out, assert_weights_logged, check_dual_cone_method, fit_tiny, solve_gradients


def test_two_conflicting_gradients_by_hand():
    # g1 = (1, 0), g2 = (-3, 2); the sum (-2, 2) breaks x1 >= 0 (the dual cone is
    # {x: x1 >= 0, -3 x1 + 2 x2 >= 0}): its projection onto x1 = 0 is (0, 2), which
    # keeps -3 x1 + 2 x2 >= 0: weights (3, 1).
    grads = np.array([[1.0, 0.0], [-3.0, 2.0]], "float32")
    combined, weights, residual, _ = solve_gradients(DualProj(), grads)
    np.testing.assert_allclose(weights, [3.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(combined, [0.0, 2.0], atol=1e-6)
    assert residual < 1e-6


def test_a_sum_in_the_dual_cone_is_kept():
    rng = np.random.default_rng(0)
    grads = (np.abs(rng.normal(size=(4, 6))) + 0.1).astype("float32")
    grads[0, 0] = -1.0
    _, weights, _, _ = solve_gradients(DualProj(), grads)
    np.testing.assert_allclose(weights, 1.0, rtol=1e-6)


def test_matches_the_reference_on_ill_conditioned_and_opposed_gradients():
    check_dual_cone_method(DualProj, ref.dualproj, ref.stress_cases())


@pytest.mark.parametrize("case", ref.hard_cases(), ids=[c[0] for c in ref.hard_cases()])
def test_matches_the_reference_on_degenerate_gradients(case):
    check_dual_cone_method(DualProj, ref.dualproj, [case], present_cases=True)


def test_absent_task_is_left_out():
    assert_absent_task_left_out(DualProj)


def test_rejects_a_bad_iteration_cap():
    with pytest.raises(ValueError, match="max_iterations=0"):
        DualProj(max_iterations=0)


def test_fit_trains():
    _, history = fit_tiny(DualProj(gradient_mode="representation"), epochs=2)
    assert np.all(np.isfinite(history.history["loss"]))
    assert_weights_logged(history, 2)
