"""ConFIG against a float64 reference written from Liu et al. (2024), equation 2, on
easy, ill-conditioned and degenerate task gradients; its equal-angle property; training."""

import numpy as np
import pytest

import gradient_references as ref
from keras_mtl.weighting import ConFIG
from weighting_utils import (DEGENERATE, assert_absent_task_left_out, assert_close_to_reference,
                             assert_weights_logged, fit_tiny, reference_tolerance, solve_gradients)

FLOAT32_EPSILON = float(np.finfo("float32").eps)


def test_orthogonal_gradients_by_hand():
    # u = (e1, e2): U^+ 1 = (1, 1), g_u = (1, 1) / sqrt(2); sum_k g_k . g_u = 3 / sqrt(2);
    # the update is (1.5, 1.5) = 1.5 g1 + 0.75 g2.
    combined, weights, _, _ = solve_gradients(ConFIG(), np.array([[1.0, 0.0], [0.0, 2.0]], "float32"))
    np.testing.assert_allclose(weights, [1.5, 0.75], rtol=1e-6)
    np.testing.assert_allclose(combined, [1.5, 1.5], rtol=1e-6)


def _check(name, grads, present, method):
    _, weights, _, factor = solve_gradients(method, grads, present)
    kept = np.flatnonzero(present)
    expected = np.zeros(len(grads))
    # The method's pseudo-inverse cut, `K eps lambda_max` on the cosine matrix, is
    # `sqrt(K eps)` on the unit gradients' singular values.
    expected[kept] = ref.config(factor[kept], rcond=np.sqrt(len(grads) * FLOAT32_EPSILON))
    assert_close_to_reference(name, weights, expected, factor, compare_weights=name not in DEGENERATE)
    assert np.all(weights[~present] == 0.0)
    return weights @ factor, factor


def test_matches_the_reference_and_makes_equal_angles():
    methods = {}
    for name, grads in ref.stress_cases():
        direction, factor = _check(name, grads, np.ones(len(grads), bool), methods.setdefault(len(grads), ConFIG()))
        # Full row rank: the update makes the same positive angle with every task.
        cosines = factor @ direction / np.linalg.norm(factor, axis=1) / np.linalg.norm(direction)
        assert cosines.min() > 0 and np.ptp(cosines) < 10 * reference_tolerance() * cosines.mean(), (name, cosines)


@pytest.mark.parametrize("case", ref.hard_cases(), ids=[c[0] for c in ref.hard_cases()])
def test_matches_the_reference_on_degenerate_gradients(case):
    name, grads, present = case
    _check(name, grads, present, ConFIG())


def test_absent_task_is_left_out():
    assert_absent_task_left_out(ConFIG)


def test_fit_trains():
    _, history = fit_tiny(ConFIG(), epochs=2)
    assert np.all(np.isfinite(history.history["loss"]))
    assert_weights_logged(history, 2)
