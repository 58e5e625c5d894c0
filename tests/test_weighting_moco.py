"""MoCo against a float64 reference written from Fernando et al. (ICLR 2023) and the
authors' code (LibMTL's `MoCo`): the tracked gradients, the weights and the update over a
sequence of steps on the hard families (rank-deficient, duplicated, parallel, a zero row,
an absent task, 0 in the hull, scales 1e-10 and 1e10) with losses from 1e-3 to 1e2; a
non-finite step; the K x P state that `compile` sizes, saved and resumed through a
`.keras` file; representation mode refused."""

import keras
import numpy as np
import pytest

import gradient_references as ref
from keras_mtl.weighting import MoCo
from weighting_utils import (assert_nonfinite_step_keeps_state, assert_round_trip, assert_weights_logged, fit_tiny,
                             run_steps, tiny_model)


def reference(steps, beta, beta_sigma, gamma, gamma_sigma, rho):
    """Per step `(combined, weights)`: `y_k <- y_k - beta_t (y_k - L_k g_k / ||g_k||)` and
    `lambda <- softmax(lambda - gamma_t (Y Y^T + rho I) lambda)` over the present tasks
    (an absent task's y_k and lambda_k kept, the present ones' weights keeping their
    total), then `Y^T lambda` over the present tasks."""
    tracked, lambdas, out = None, None, []
    for t, (grads, losses, present) in enumerate(steps, start=1):
        grads = np.asarray(grads, "float64")
        k = len(grads)
        if tracked is None:
            tracked, lambdas = np.zeros_like(grads), np.full(k, 1.0 / k)
        norms = np.array([np.linalg.norm(g) for g in grads])
        unit = grads / np.where(norms > 0, norms, 1.0)[:, None]
        rescaled = unit * np.asarray(losses, "float64")[:, None]
        update = tracked - beta / t ** beta_sigma * (tracked - rescaled)
        tracked = np.where(present[:, None], update, tracked)
        y, lam = tracked[present], lambdas[present]
        logits = lam - gamma / t ** gamma_sigma * (y @ y.T + rho * np.eye(len(y))) @ lam
        softmax = np.exp(logits - logits.max())
        lambdas = lambdas.copy()
        lambdas[present] = lam.sum() * softmax / softmax.sum()
        weights = np.where(present, lambdas, 0.0)
        out.append((weights @ tracked, weights))
    return out


def _sequences():
    """Per K, the hard families of that K in a row (and the first again), with losses
    from 1e-3 to 1e2."""
    rng = np.random.default_rng(0)
    by_k = {}
    for _, grads, present in ref.hard_cases():
        losses = np.exp(rng.uniform(np.log(1e-3), np.log(1e2), len(grads))).astype("float32")
        by_k.setdefault(len(grads), []).append((grads, losses, present))
    return {k: steps + steps[:1] for k, steps in by_k.items() if len(steps) >= 2}


@pytest.mark.parametrize("arguments", [
    dict(beta=0.5, beta_sigma=0.5, gamma=0.1, gamma_sigma=0.5, rho=0.0),
    dict(beta=0.9, beta_sigma=0.0, gamma=0.05, gamma_sigma=0.0, rho=0.5),
    dict(beta=1.0, beta_sigma=0.0, gamma=0.0, gamma_sigma=0.0, rho=0.0),
])
def test_matches_the_reference_on_the_hard_families(arguments):
    sequences = _sequences()
    assert {4, 5} <= set(sequences)
    for k, steps in sequences.items():
        ours = run_steps(MoCo(**arguments), steps)
        expected = reference(steps, **arguments)
        for t, ((combined, weights), (expected_combined, expected_weights)) in enumerate(zip(ours, expected)):
            assert np.linalg.norm(combined - expected_combined) <= 1e-5 * np.linalg.norm(expected_combined), (k, t)
            np.testing.assert_allclose(weights, expected_weights, rtol=1e-5, atol=1e-7, err_msg=f"K={k}, step {t}")
            assert np.all(weights[~steps[t][2]] == 0.0)
            assert np.isclose(weights.sum(), 1.0, rtol=1e-5) or not steps[t][2].all()


def test_extreme_gradient_scales_are_rescaled_exactly():
    # Two tasks 1e20 apart in gradient norm: each is tracked at its loss's norm.
    grads = np.array([[3e-10, 4e-10, 0.0], [0.0, 6e9, 8e9]], "float32")
    method = MoCo(beta=1.0, gamma=0.0)
    (combined, weights), = run_steps(method, [(grads, np.array([2.0, 5.0], "float32"), np.ones(2, bool))])
    np.testing.assert_allclose(method.tracked_gradients.numpy(), [[1.2, 1.6, 0.0], [0.0, 3.0, 4.0]], rtol=1e-6)
    np.testing.assert_allclose(weights, [0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(combined, [0.6, 0.8 + 1.5, 2.0], rtol=1e-6)


def test_a_nonfinite_step_keeps_the_state():
    assert_nonfinite_step_keeps_state(MoCo(), ref.scaled_family(3, 1, 10.0))


def test_compile_sizes_the_state_and_it_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    model, history = fit_tiny(MoCo(), epochs=2)
    assert_weights_logged(history, 2)
    shared = sum(int(np.prod(v.shape)) for v in model.shared_variables)
    assert model.weighting.tracked_gradients.shape == (3, shared)
    assert float(model.weighting.steps.numpy()) == 8.0  # 2 epochs of 4 batches
    assert np.abs(model.weighting.tracked_gradients.numpy()).max() > 0
    lambdas = model.weighting.lambdas.numpy()
    assert np.isclose(lambdas.sum(), 1.0, rtol=1e-5) and np.ptp(lambdas) > 0
    assert_round_trip(model, tmp_path)


def test_representation_mode_and_a_missing_size_are_refused():
    with pytest.raises(ValueError, match=r"MoCo .* gradient_mode='representation'"):
        MoCo(gradient_mode="representation")
    with pytest.raises(ValueError, match="MoCo needs the number of shared parameters.*num_shared_parameters=None"):
        MoCo().build((3,))
    model = tiny_model()
    with pytest.raises(ValueError, match="gradient_mode='representation'"):
        model.compile(optimizer="adam", weighting=MoCo(gradient_mode="representation"))


@pytest.mark.parametrize("arguments", [{"beta": 1.5}, {"beta": -0.1}, {"beta_sigma": -1.0}, {"gamma": -0.1},
                                       {"gamma_sigma": -1.0}, {"rho": -1.0}])
def test_rejects_bad_arguments(arguments):
    name, value = next(iter(arguments.items()))
    with pytest.raises((ValueError, TypeError), match=f"{name}={value}"):
        MoCo(**arguments)
