"""DB-MTL against a float64 reference written from Lin et al. (2023) and the authors' code
(LibMTL's `DB_MTL`): the moving averages of the log-losses' gradients and their balanced
sum over a sequence of steps on the hard families (rank-deficient, duplicated, parallel,
a zero row, an absent task, 0 in the hull, scales 1e-10 and 1e10) with losses from 1e-6
to 1e3; a non-finite step; the K x P state that `compile` sizes, saved and resumed through
a `.keras` file; representation mode refused."""

import keras
import numpy as np
import pytest

import gradient_references as ref
from keras_mtl.weighting import DBMTL
from weighting_utils import (assert_nonfinite_step_keeps_state, assert_round_trip, assert_weights_logged, fit_tiny,
                             run_steps, tiny_model)


def reference(steps, beta, beta_sigma):
    """Per step `(combined, scales)`: `m_k <- h_k + beta / t^sigma (m_k - h_k)` with
    `h_k = g_k / (L_k + 1e-8)` for the present tasks, then `sum_k max_j ||m_j|| / ||m_k|| m_k`
    over them (scale 0 for a zero average or an absent task)."""
    average, out = None, []
    for t, (grads, losses, present) in enumerate(steps, start=1):
        grads = np.asarray(grads, "float64")
        average = np.zeros_like(grads) if average is None else average
        log_gradients = grads / (np.asarray(losses, "float64") + 1e-8)[:, None]
        update = log_gradients + beta / t ** beta_sigma * (average - log_gradients)
        average = np.where(present[:, None], update, average)
        norms = np.where(present, np.linalg.norm(average, axis=1), 0.0)
        scales = np.where(norms > 0, norms.max() / np.where(norms > 0, norms, 1.0), 0.0)
        out.append((scales @ average, scales))
    return out


def _sequences():
    """Per K, the hard families of that K in a row (and the first again), with losses
    from 1e-6 to 1e3."""
    rng = np.random.default_rng(0)
    by_k = {}
    for _, grads, present in ref.hard_cases():
        by_k.setdefault(len(grads), []).append((grads, np.exp(rng.uniform(np.log(1e-6), np.log(1e3), len(grads))).astype("float32"), present))
    return {k: steps + steps[:1] for k, steps in by_k.items() if len(steps) >= 2}


@pytest.mark.parametrize("beta, beta_sigma", [(0.9, 0.0), (0.5, 0.5), (0.0, 0.0)])
def test_matches_the_reference_on_the_hard_families(beta, beta_sigma):
    sequences = _sequences()
    assert {4, 5} <= set(sequences)
    for k, steps in sequences.items():
        ours = run_steps(DBMTL(beta=beta, beta_sigma=beta_sigma), steps)
        expected = reference(steps, beta, beta_sigma)
        for t, ((combined, scales), (expected_combined, expected_scales)) in enumerate(zip(ours, expected)):
            assert np.linalg.norm(combined - expected_combined) <= 1e-5 * np.linalg.norm(expected_combined), (k, t)
            np.testing.assert_allclose(scales, expected_scales, rtol=1e-5, err_msg=f"K={k}, step {t}")
            assert np.all(scales[~steps[t][2]] == 0.0)


def test_extreme_gradient_scales_are_balanced_exactly():
    # Two tasks 1e20 apart in gradient norm: each enters with the larger one's norm.
    grads = np.array([[3e-10, 4e-10, 0.0], [0.0, 6e9, 8e9]], "float32")
    (combined, scales), = run_steps(DBMTL(beta=0.0), [(grads, np.ones(2, "float32"), np.ones(2, bool))])
    np.testing.assert_allclose(scales, [2e19, 1.0], rtol=1e-5)
    np.testing.assert_allclose(combined, [6e9, 8e9 + 6e9, 8e9], rtol=1e-5)


def test_a_nonfinite_step_keeps_the_averages():
    assert_nonfinite_step_keeps_state(DBMTL(), ref.scaled_family(3, 1, 10.0))


def test_compile_sizes_the_state_and_it_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    model, history = fit_tiny(DBMTL(), epochs=2)
    assert_weights_logged(history, 2)
    shared = sum(int(np.prod(v.shape)) for v in model.shared_variables)
    assert model.weighting.gradient_average.shape == (3, shared)
    assert float(model.weighting.steps.numpy()) == 8.0  # 2 epochs of 4 batches
    assert np.abs(model.weighting.gradient_average.numpy()).max() > 0
    assert_round_trip(model, tmp_path)


def test_representation_mode_and_a_missing_size_are_refused():
    with pytest.raises(ValueError, match=r"DBMTL .* gradient_mode='representation'"):
        DBMTL(gradient_mode="representation")
    with pytest.raises(ValueError, match="DBMTL needs the number of shared parameters.*num_shared_parameters=None"):
        DBMTL().build((3,))
    model = tiny_model()
    with pytest.raises(ValueError, match="gradient_mode='representation'"):
        model.compile(optimizer="adam", weighting=DBMTL(gradient_mode="representation"))


@pytest.mark.parametrize("arguments", [{"beta": 1.5}, {"beta": -0.1}, {"beta_sigma": -1.0}])
def test_rejects_bad_arguments(arguments):
    name, value = next(iter(arguments.items()))
    with pytest.raises((ValueError, TypeError), match=f"{name}={value}"):
        DBMTL(**arguments)
