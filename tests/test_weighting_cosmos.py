"""COSMOS against a float64 reference written from Ruchte and Grabocka (2021, equation 4):
the objective and its derivative (the logged weights) at losses over many orders of
magnitude and scales 1e-20 to 1e20, on and off the preference ray, with absent tasks;
fit and the `.keras` round trip."""

import numpy as np
import pytest

from keras_mtl.weighting import COSMOS
from weighting_utils import assert_fits_and_round_trips, fit_tiny, objective_and_gradient


def reference(losses, penalty, preference=None, present=None):
    """`r . L - lambda cos(r, L)` and its derivative in the losses, over the present tasks
    (the default ray 1/K over them)."""
    losses = np.asarray(losses, "float64")
    k = len(losses)
    present = np.ones(k, bool) if present is None else np.asarray(present, bool)
    r = np.full(k, 1.0 / present.sum()) if preference is None else np.asarray(preference, "float64")
    r, f = np.where(present, r, 0.0), np.where(present, losses, 0.0)
    nr, nf = np.linalg.norm(r), np.linalg.norm(f)
    cosine = r @ f / (nr * nf)
    weights = r - penalty * (r / (nr * nf) - cosine * f / nf ** 2)
    return r @ f - penalty * cosine, weights


def _cases():
    rng = np.random.default_rng(0)
    for k in (2, 3, 7):
        preference = rng.dirichlet(np.full(k, 1.2))  # the authors' draws for Multi-MNIST
        yield k, preference, np.exp(rng.normal(size=k) * 3)
        yield k, preference, np.geomspace(1e-6, 1e4, k)
        yield k, preference, np.insert(np.exp(rng.normal(size=k - 1)), 0, 0.0)  # a zero loss
        yield k, None, np.full(k, 0.5)  # on the ray: cosine 1


@pytest.mark.parametrize("penalty", [0.0, 2.0, 8.0])
def test_objective_and_weights_match_the_reference(penalty):
    for k, preference, losses in _cases():
        method = COSMOS(cosine_penalty=penalty, preference=None if preference is None else list(preference))
        method.build((k,))
        losses32 = losses.astype("float32")
        expected, expected_weights = reference(losses32, penalty, preference)
        objective, weights, gradient = objective_and_gradient(method, losses32)
        assert abs(objective - expected) <= 1e-6 * (np.abs(losses32).max() + penalty), (k, objective, expected)
        # The cosine's derivative is of the order of 1 / ||L||.
        atol = 1e-6 * (1 + penalty / np.linalg.norm(losses32))
        np.testing.assert_allclose(weights, expected_weights, rtol=1e-5, atol=atol)
        np.testing.assert_allclose(gradient, weights, rtol=1e-5, atol=atol)


def test_the_cosine_penalty_pulls_towards_the_ray():
    # Off the ray the weights move mass towards the task whose loss is too large for
    # the ray; on the ray the penalty's derivative is 0 along every direction.
    method = COSMOS(cosine_penalty=2.0, preference=[0.5, 0.5])
    method.build((2,))
    _, weights, _ = objective_and_gradient(method, [1.0, 3.0])
    assert weights[1] > 0.5 > weights[0]
    objective, weights, _ = objective_and_gradient(method, [2.0, 2.0])
    np.testing.assert_allclose(objective, 2.0 - 2.0, atol=1e-6)
    np.testing.assert_allclose(weights, [0.5, 0.5], rtol=1e-6)


@pytest.mark.parametrize("scale", [1e-20, 1e-10, 1e10, 1e20])
def test_extreme_loss_scales(scale):
    # The cosine is invariant to the losses' scale: float32 squares of these losses
    # would overflow or underflow.
    losses, preference = np.array([0.3, 2.0, 0.7]), [0.2, 0.5, 0.3]
    method = COSMOS(cosine_penalty=2.0, preference=preference)
    method.build((3,))
    expected, expected_weights = reference(losses * scale, 2.0, preference)
    objective, weights, gradient = objective_and_gradient(method, losses * scale)
    np.testing.assert_allclose(objective, expected, rtol=1e-5)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-5)
    np.testing.assert_allclose(gradient, expected_weights, rtol=1e-5)


def test_absent_tasks_are_left_out():
    losses, present = [0.7, 0.0, 2.2, 5.0], [True, False, True, True]
    for preference in (None, [0.1, 0.3, 0.2, 0.4]):
        method = COSMOS(cosine_penalty=2.0, preference=preference)
        method.build((4,))
        expected, expected_weights = reference(losses, 2.0, preference, present)
        objective, weights, gradient = objective_and_gradient(method, losses, present)
        np.testing.assert_allclose(objective, expected, rtol=1e-6)
        np.testing.assert_allclose(weights, expected_weights, rtol=1e-5)
        np.testing.assert_allclose(gradient, weights, rtol=1e-5)
        assert weights[1] == 0.0 and gradient[1] == 0.0
    # No task present, or every loss 0: the cosine is 0, everything finite.
    objective, weights, gradient = objective_and_gradient(method, np.zeros(4), [False] * 4)
    assert objective == 0.0 and np.all(weights == 0.0) and np.all(gradient == 0.0)
    objective, weights, gradient = objective_and_gradient(method, np.zeros(4))
    assert objective == 0.0 and np.all(np.isfinite(weights)) and np.all(np.isfinite(gradient))


def test_fit_and_round_trip(tmp_path):
    assert_fits_and_round_trips(COSMOS(cosine_penalty=2.0, preference=[0.2, 0.5, 0.3]), tmp_path)


@pytest.mark.parametrize("arguments, match", [
    ({"cosine_penalty": -1.0}, "cosine_penalty=-1.0"), ({"preference": [1.0, -0.5]}, r"preference\[1\]=-0.5"),
    ({"preference": [0.0, 0.0]}, r"preference=\[0.0, 0.0\]"), ({"preference": 0.5}, "preference=0.5")])
def test_rejects_bad_arguments(arguments, match):
    with pytest.raises((ValueError, TypeError), match=match):
        COSMOS(**arguments)


def test_rejects_a_preference_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"COSMOS has 3 tasks but 4 values of preference"):
        fit_tiny(COSMOS(preference=[0.1, 0.2, 0.3, 0.4]), epochs=1)
