"""Krum and Multi-Krum against a float64 reference written from Blanchard et al.
(2017), by hand, on the stress and degenerate families, with absent tasks; training."""

import numpy as np
import pytest

import gradient_references as ref
from keras_mtl.weighting import Krum
from weighting_utils import assert_round_trip, assert_weights_logged, fit_tiny, solve_gradients


def test_an_outlier_is_never_selected():
    # Four gradients near (1, 0) and one far away: with f = 1 each score sums the two
    # nearest squared distances; the one nearest the cluster's centre is selected.
    grads = np.array([[1.0, 0.0], [1.1, 0.1], [0.9, -0.1], [1.0, 0.3], [-5.0, 8.0]], "float32")
    combined, weights, _, _ = solve_gradients(Krum(n_byzantine=1), grads)
    np.testing.assert_array_equal(weights, [5.0, 0, 0, 0, 0])
    np.testing.assert_allclose(combined, 5 * grads[0], rtol=1e-6)
    _, weights, _, _ = solve_gradients(Krum(n_byzantine=1, n_selected=3), grads)
    np.testing.assert_allclose(weights, ref.krum(grads, 1, 3) * 5, rtol=1e-6)
    assert weights[4] == 0.0


@pytest.mark.parametrize("n_selected", [1, 2])
def test_matches_the_reference(n_selected):
    methods = {}
    cases = [c for c in ref.stress_cases() if len(c[1]) >= 4]
    cases += [(name, grads) for name, grads, present in ref.hard_cases() if present.all()]
    for name, grads in cases:
        k = len(grads)
        f = (k - 3) // 2
        method = methods.setdefault(k, Krum(n_byzantine=f, n_selected=n_selected))
        _, weights, _, factor = solve_gradients(method, grads)
        # Distances from the Gramian the method saw; ties (duplicated rows) to the lower index.
        np.testing.assert_allclose(weights, k * ref.krum(factor, f, n_selected), rtol=1e-6, err_msg=name)


def test_absent_task_is_left_out():
    grads = ref.scaled_family(5, 3, 10.0)
    present = [True, True, False, True, True, True]
    weights = solve_gradients(Krum(n_byzantine=1, n_selected=2), np.insert(grads, 2, 0.0, axis=0), present)[1]
    alone = solve_gradients(Krum(n_byzantine=1, n_selected=2), grads)[1]
    np.testing.assert_allclose(np.delete(weights, 2), alone, rtol=1e-6)
    assert weights[2] == 0.0


def test_rejects_too_few_tasks():
    with pytest.raises(ValueError, match="n_byzantine=1"):
        Krum(n_byzantine=1).build((3,))
    with pytest.raises(ValueError, match="n_selected=0"):
        Krum(n_byzantine=0, n_selected=0)


def test_fit_trains_and_round_trips(tmp_path):
    model, history = fit_tiny(Krum(n_byzantine=0), epochs=2)
    assert np.all(np.isfinite(history.history["loss"]))
    assert_weights_logged(history, 2)
    assert_round_trip(model, tmp_path)
