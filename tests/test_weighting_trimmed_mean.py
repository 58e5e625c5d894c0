"""The coordinate-wise trimmed mean against a float64 reference written from Yin et al.
(2018), on the stress and degenerate families, with absent tasks; training."""

import numpy as np
import pytest

import gradient_references as ref
from keras_mtl.weighting import TrimmedMean
from weighting_utils import assert_weights_logged, fit_tiny, solve_gradients


def test_by_hand():
    grads = np.array([[1.0, -4.0], [2.0, 0.0], [30.0, 1.0], [-9.0, 2.0]], "float32")
    combined, weights, _, _ = solve_gradients(TrimmedMean(trim_number=1), grads)
    # Kept: (1, 2) in the first coordinate, (0, 1) in the second; their means times 4.
    np.testing.assert_allclose(combined, [6.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(weights, 2.0 * np.array([1 / 5, 1.0, 1 / 31, 0.0]), rtol=1e-6)


@pytest.mark.parametrize("trim_number", [0, 1, 2])
def test_matches_the_reference(trim_number):
    methods = {}
    cases = [(name, grads, np.ones(len(grads), bool)) for name, grads in ref.stress_cases()] + ref.hard_cases()
    for name, grads, present in cases:
        if present.sum() < 2 * trim_number + 1:
            continue
        method = methods.setdefault(len(grads), TrimmedMean(trim_number=trim_number))
        combined, weights, _, _ = solve_gradients(method, grads, present)
        expected = present.sum() * ref.trimmed_mean(grads[present], trim_number)
        scale = np.abs(grads).max() * present.sum()
        np.testing.assert_allclose(combined, expected, rtol=1e-5, atol=1e-6 * scale, err_msg=name)
        assert np.all(weights[~present] == 0.0), name


def test_rejects_too_few_tasks():
    with pytest.raises(ValueError, match="trim_number=2"):
        TrimmedMean(trim_number=2).build((4,))


def test_fit_trains():
    _, history = fit_tiny(TrimmedMean(trim_number=1), epochs=2)
    assert np.all(np.isfinite(history.history["loss"]))
    assert_weights_logged(history, 2)
