"""PBI against a float64 reference written from Zhang and Li (2007, section III-C): the
objective and its derivative (the logged weights) off, on and across the preference ray,
at loss scales 1e-20 to 1e20, with a reference point and absent tasks; fit and the
`.keras` round trip."""

import numpy as np
import pytest

from keras_mtl.weighting import PBI
from weighting_utils import assert_fits_and_round_trips, fit_tiny, objective_and_gradient


def reference(losses, theta, preference=None, reference_point=None, present=None):
    """`d1 + theta d2` and its derivative in the losses, over the present tasks."""
    losses = np.asarray(losses, "float64")
    k = len(losses)
    present = np.ones(k, bool) if present is None else np.asarray(present, bool)
    w = np.ones(k) if preference is None else np.asarray(preference, "float64")
    z = np.zeros(k) if reference_point is None else np.asarray(reference_point, "float64")
    f = np.where(present, losses - z, 0.0)
    u = np.where(present, w, 0.0)
    u = u / np.linalg.norm(u)
    d1 = f @ u
    across = f - d1 * u
    d2 = np.linalg.norm(across)
    d2 = d2 if d2 > 1e-12 * np.linalg.norm(f) else 0.0  # on the ray to float64 rounding
    weights = u + (theta * across / d2 if d2 > 0 else 0.0)
    return d1 + theta * d2, weights


def _cases():
    rng = np.random.default_rng(0)
    for k in (2, 3, 7):
        preference = rng.uniform(0.1, 3.0, size=k)
        yield k, preference, np.exp(rng.normal(size=k) * 3)
        yield k, preference, np.geomspace(1e-6, 1e4, k)
        yield k, preference, np.insert(np.exp(rng.normal(size=k - 1)), 0, 0.0)  # a zero loss
        yield k, None, np.full(k, 0.5)  # on the ray: d2 = 0


@pytest.mark.parametrize("theta", [0.0, 5.0, 100.0])
def test_objective_and_weights_match_the_reference(theta):
    for k, preference, losses in _cases():
        method = PBI(theta=theta, preference=None if preference is None else list(preference))
        method.build((k,))
        losses32 = losses.astype("float32")
        expected, expected_weights = reference(losses32, theta, preference)
        objective, weights, gradient = objective_and_gradient(method, losses32)
        scale = np.abs(losses32).max() * (1 + theta)
        assert abs(objective - expected) <= 1e-6 * scale, (k, theta, objective, expected)
        np.testing.assert_allclose(weights, expected_weights, rtol=1e-5, atol=1e-5 * (1 + theta))
        np.testing.assert_allclose(gradient, weights, rtol=1e-5, atol=1e-6 * (1 + theta))


def test_on_the_ray_the_objective_is_the_distance_along_it():
    method = PBI(theta=5.0, preference=[1.0, 2.0, 2.0])
    method.build((3,))
    objective, weights, gradient = objective_and_gradient(method, [0.5, 1.0, 1.0])
    np.testing.assert_allclose(objective, 1.5, rtol=1e-6)  # ||f||, f on the ray
    np.testing.assert_allclose(weights, [1 / 3, 2 / 3, 2 / 3], rtol=1e-6)
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize("scale", [1e-20, 1e-10, 1e10, 1e20])
def test_extreme_loss_scales(scale):
    # The objective is homogeneous of degree 1 in the losses and its derivative of
    # degree 0: float32 squares of these losses would overflow or underflow.
    losses = np.array([0.3, 2.0, 0.7])
    method = PBI(theta=5.0, preference=[1.0, 0.5, 2.0])
    method.build((3,))
    expected, expected_weights = reference(losses, 5.0, [1.0, 0.5, 2.0])
    objective, weights, gradient = objective_and_gradient(method, losses * scale)
    np.testing.assert_allclose(objective, expected * scale, rtol=1e-5)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-5)
    np.testing.assert_allclose(gradient, expected_weights, rtol=1e-5)


def test_reference_point_and_absent_tasks():
    losses, present = [0.7, 0.0, 2.2, 5.0], [True, False, True, True]
    preference, point = [1.0, 3.0, 0.5, 2.0], [0.1, 0.2, -1.0, 0.5]
    method = PBI(theta=2.0, preference=preference, reference=point)
    method.build((4,))
    expected, expected_weights = reference(losses, 2.0, preference, point, present)
    objective, weights, gradient = objective_and_gradient(method, losses, present)
    np.testing.assert_allclose(objective, expected, rtol=1e-6)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-5)
    np.testing.assert_allclose(gradient, weights, rtol=1e-5)
    assert weights[1] == 0.0 and gradient[1] == 0.0
    # No task present: a zero objective and weights.
    objective, weights, gradient = objective_and_gradient(method, np.zeros(4), [False] * 4)
    assert objective == 0.0 and np.all(weights == 0.0) and np.all(gradient == 0.0)


def test_fit_and_round_trip(tmp_path):
    assert_fits_and_round_trips(PBI(theta=5.0, preference=[1.0, 2.0, 1.0]), tmp_path)


@pytest.mark.parametrize("arguments, match", [
    ({"theta": -1.0}, "theta=-1.0"), ({"preference": [1.0, -0.5]}, r"preference\[1\]=-0.5"),
    ({"preference": [0.0, 0.0]}, r"preference=\[0.0, 0.0\]"), ({"preference": "equal"}, "preference='equal'"),
    ({"reference": [0.0, float("nan")]}, r"reference\[1\]=nan")])
def test_rejects_bad_arguments(arguments, match):
    with pytest.raises((ValueError, TypeError), match=match):
        PBI(**arguments)


def test_rejects_a_preference_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"PBI has 3 tasks but 2 values of preference"):
        fit_tiny(PBI(preference=[1.0, 2.0]), epochs=1)
