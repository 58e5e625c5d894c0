"""DWA: epoch-average losses accumulated in the step, weights updated at epoch end."""

import numpy as np
import pytest
from weighting_utils import assert_round_trip, assert_weights_logged, fit_tiny, TASKS

from keras_mtl.weighting import DWA


def _numpy_dwa(epoch_means, temperature):
    """Weights used in each epoch, from the previous epochs' mean losses (Liu et al. eq. 7)."""
    k = epoch_means.shape[1]
    weights = [np.ones(k), np.ones(k)]
    for t in range(2, len(epoch_means) + 1):
        w = epoch_means[t - 1] / epoch_means[t - 2]
        e = np.exp(w / temperature)
        weights.append(k * e / e.sum())
    return np.array(weights)


def test_weights_follow_the_ratio_of_the_last_two_epoch_means():
    rng = np.random.default_rng(3)
    # 4 epochs of 5 noisy steps; task 1 stalls, task 2 drops fast.
    trend = np.array([[2.0, 1.0, 3.0], [1.6, 1.1, 1.5], [1.2, 1.2, 0.6], [1.0, 1.2, 0.3]])
    losses = (trend[:, None, :] * rng.uniform(0.95, 1.05, size=(4, 5, 3))).astype("float32")
    dwa = DWA(temperature=1.5)
    dwa.build((3,))
    seen = []
    for epoch in losses:
        for step in epoch:
            objective, weights = dwa.combine(step, training=True)
            np.testing.assert_allclose(objective.numpy(), np.sum(weights.numpy() * step), rtol=1e-6)
        seen.append(weights.numpy())
        # Evaluation neither accumulates nor changes the weights.
        dwa.combine(np.array([9.0, 9.0, 9.0], "float32"), training=False)
        dwa.on_epoch_end()
    expected = _numpy_dwa(losses.mean(axis=1), 1.5)
    np.testing.assert_allclose(np.array(seen), expected[:4], rtol=1e-5)
    np.testing.assert_allclose(dwa.current_weights.numpy(), expected[4], rtol=1e-5)
    assert expected[4][1] > expected[4][0] > expected[4][2]  # the stalled task weighs most


def test_epoch_without_steps_changes_nothing():
    dwa = DWA()
    dwa.build((2,))
    for losses in ([1.0, 2.0], [0.5, 2.0], [0.25, 2.0]):
        dwa.combine(np.array(losses, "float32"), training=True)
        dwa.on_epoch_end()
    state = [v.numpy() for v in dwa.variables]
    dwa.on_epoch_end()
    for before, v in zip(state, dwa.variables):
        np.testing.assert_array_equal(v.numpy(), before)


def test_rejects_bad_temperature():
    with pytest.raises(ValueError, match="temperature=0"):
        DWA(temperature=0)


def test_fit_updates_weights_from_logged_epoch_losses_and_round_trips(tmp_path):
    model, history = fit_tiny("dwa", epochs=4)
    logs = history.history
    assert_weights_logged(history, 4)
    names = model.task_names
    # Equal-size batches: the logged epoch loss is the mean of the step losses.
    means = np.array([[logs[f"{n}_loss"][e] for n in names] for e in range(4)])
    expected = _numpy_dwa(means, 2.0)
    logged = np.array([[logs[f"{n}_weight"][e] for n in names] for e in range(4)])
    np.testing.assert_allclose(logged, expected[:4], rtol=1e-4)
    np.testing.assert_allclose(model.weighting.current_weights.numpy(), expected[4], rtol=1e-4)
    assert set(names) == set(TASKS)
    assert_round_trip(model, tmp_path)
