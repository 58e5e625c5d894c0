"""CR-MOGM (weight smoothing) against a float64 reference written from Zhou et al. (2022):
the moving average of the inner method's float64 reference weights over a sequence of
steps, on ill-conditioned and opposed gradients and on the hard families (rank-deficient,
duplicated, parallel, a zero row, an absent task, 0 in the hull, scales 1e-10 and 1e10);
the config round trip through `serialize_keras_object`; and the exact resume of its state
and of the inner method's from a `.keras` file."""

import os

import keras
import numpy as np
import pytest

import gradient_references as ref
from keras_mtl import weighting
from keras_mtl.weighting import CRMOGM
from weighting_utils import (assert_close_to_reference, assert_round_trip, assert_weights_logged, fit_tiny,
                             solve_gradients, tiny_data, tiny_model)


def smoothed(fresh, alpha, present):
    """The float64 moving averages of the per-step weights `fresh` (rows), each task's
    starting at its first present step, 0 where absent."""
    average, seen, out = np.zeros(fresh.shape[1]), np.zeros(fresh.shape[1], bool), []
    for weights, mask in zip(fresh, present):
        update = np.where(seen, alpha * average + (1 - alpha) * weights, weights)
        average = np.where(mask, update, average)
        seen |= mask
        out.append(np.where(mask, average, 0.0))
    return np.array(out)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.9, 1.0])
def test_smooths_the_reference_weights_of_upgrad(alpha):
    # A sequence of steps over the stress families (K = 5): UPGrad's weights are unique
    # there, so the reference is the average of its float64 reference weights.
    steps = [grads for _, grads in ref.stress_cases() if len(grads) == 5]
    assert len(steps) >= 3
    method = CRMOGM(inner="upgrad", alpha=alpha)
    fresh, factors, weights = [], [], []
    for grads in steps:
        _, step_weights, residual, factor = solve_gradients(method, grads)
        fresh.append(ref.upgrad(factor))
        factors.append(factor)
        weights.append(step_weights)
        assert residual < 1e-4
    expected = smoothed(np.array(fresh), alpha, np.ones((len(steps), 5), bool))
    for name, step_weights, expected_weights, factor in zip(range(len(steps)), weights, expected, factors):
        assert_close_to_reference(f"step {name}", step_weights, expected_weights, factor)


def test_smooths_the_inner_methods_weights_on_the_hard_families():
    # The K = 5 hard families in a row (the "absent" step leaves task 1 out), through
    # MGDA and PCGrad: each step's weights are the average of what a separate copy of
    # the inner method returns on the same step (its own reference is its own test's).
    steps = [(name, grads, present) for name, grads, present in ref.hard_cases() if len(grads) == 5]
    assert {"absent", "duplicated", "parallel", "zero-row", "rank2-k5"} <= {name for name, _, _ in steps}
    steps.append(steps[0])  # after the absent step: task 1's average is the one before it
    for inner in (lambda: weighting.MGDA(), lambda: weighting.PCGrad(seed=4)):
        method, alone = CRMOGM(inner=inner(), alpha=0.7), inner()
        weights, fresh = [], []
        for name, grads, present in steps:
            _, step_weights, _, _ = solve_gradients(method, grads, present)
            fresh.append(solve_gradients(alone, grads, present)[1])
            weights.append(step_weights)
            assert np.all(np.isfinite(step_weights)), name
        presence = np.array([present for _, _, present in steps])
        expected = smoothed(np.array(fresh), 0.7, presence)
        np.testing.assert_allclose(np.array(weights), expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
        absent = [i for i, (name, _, _) in enumerate(steps) if name == "absent"][0]
        assert weights[absent][1] == 0.0 and weights[absent + 1][1] != 0.0


def test_an_absent_task_keeps_its_average_and_a_late_task_starts_at_its_weights():
    grads = ref.scaled_family(3, 2, 10.0)
    method = CRMOGM(inner="imtl", alpha=0.5)
    first = solve_gradients(method, grads, [True, True, False])[1]
    assert first[2] == 0.0 and float(method.seen.numpy()[2]) == 0.0
    second = solve_gradients(method, grads, [True, True, True])[1]
    alone = solve_gradients(weighting.IMTL(), grads)[1]
    # Task 2 starts at the inner weight; tasks 0 and 1 average the two steps' weights.
    np.testing.assert_allclose(second[2], alone[2], rtol=1e-5)
    np.testing.assert_allclose(second[:2], 0.5 * first[:2] + 0.5 * alone[:2], rtol=1e-5)


def test_config_round_trips_through_serialize_keras_object():
    for inner in ("upgrad", weighting.CAGrad(c=0.3), weighting.PCGrad(seed=5, gradient_mode="representation")):
        method = CRMOGM(inner=inner, alpha=0.8)
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(method))
        assert type(restored) is CRMOGM and type(restored.inner) is type(method.inner)
        assert restored.get_config() == method.get_config()
        assert restored.gradient_mode == method.inner.gradient_mode
    assert type(weighting.get("cr_mogm").inner) is weighting.MGDA
    by_name = CRMOGM(inner="dualproj", gradient_mode="representation")
    assert by_name.gradient_mode == by_name.inner.gradient_mode == "representation"


def _fit(model, epochs, seed):
    x, y = tiny_data(n=48, seed=seed)
    return model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, shuffle=False)


@pytest.mark.slow
def test_fit_saves_and_resumes_exactly(tmp_path):
    # Two epochs straight, and one epoch, a `.keras` file, one more epoch: the same
    # weights, averages and inner random draws (PCGrad's seed generator).
    runs = []
    for resume in (False, True):
        keras.utils.set_random_seed(0)
        model = tiny_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting=CRMOGM(inner=weighting.PCGrad(seed=1)))
        _fit(model, 1, seed=0)
        if resume:
            path = os.path.join(tmp_path, "model.keras")
            model.save(path)
            model = keras.saving.load_model(path)
        history = _fit(model, 1, seed=1)
        runs.append((model, history))
    (straight, straight_history), (resumed, resumed_history) = runs
    assert len(straight.weighting.variables) == 3  # the averages, seen and PCGrad's seed state
    for a, b in zip(straight.weighting.variables, resumed.weighting.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert straight_history.history == resumed_history.history


def test_fit_trains_and_round_trips(tmp_path):
    model, history = fit_tiny(CRMOGM(inner="upgrad", alpha=0.9), epochs=2)
    assert_weights_logged(history, 2)
    assert float(model.weighting.seen.numpy().min()) == 1.0
    assert_round_trip(model, tmp_path)


@pytest.mark.parametrize("arguments, match", [
    ({"alpha": 1.5}, "alpha=1.5"), ({"alpha": -0.1}, "alpha=-0.1"),
    ({"inner": "graddrop"}, "inner=<GradDrop"), ({"inner": weighting.TrimmedMean(trim_number=1)}, "inner=<TrimmedMean"),
    ({"inner": "dwa"}, "inner=<DWA"), ({"inner": "nope"}, "weighting='nope'"),
    ({"inner": weighting.UPGrad(), "gradient_mode": "representation"}, "gradient_mode='representation'")])
def test_rejects_bad_arguments(arguments, match):
    with pytest.raises((ValueError, TypeError), match=match):
        CRMOGM(**arguments)
