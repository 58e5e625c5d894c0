"""DWA: epoch-average losses accumulated in the step, weights updated at epoch end."""

import keras
import numpy as np
import pytest
from weighting_utils import assert_round_trip, assert_weights_logged, fit_tiny, tiny_data, tiny_model, TASKS

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


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at_step):
        super().__init__()
        self.at_step, self.steps = at_step, 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps == self.at_step:
            raise KeyboardInterrupt


def _fit_with_backup(backup, at_step=None):
    """Fits 4 epochs of 4 steps with `BackupAndRestore(backup)`, interrupted after
    `at_step` steps (then the model is lost, as in a killed process)."""
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(optimizer="adam", weighting=DWA())
    callbacks = [keras.callbacks.BackupAndRestore(backup)] + ([_Interrupt(at_step)] if at_step else [])
    model.fit(*tiny_data(32), batch_size=8, epochs=4, shuffle=False, verbose=0, callbacks=callbacks)
    return model


@pytest.mark.parametrize("at_step", [8, 10], ids=["between_epochs", "mid_epoch"])
def test_interrupted_run_resumed_from_backup_matches_uninterrupted(at_step, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _fit_with_backup(tmp_path / "backup", at_step)
    resumed = _fit_with_backup(tmp_path / "backup")
    straight = _fit_with_backup(tmp_path / "other")
    # Epochs 3 and 4 used dynamic weights: the resumed run must have restored them.
    assert not np.allclose(straight.weighting.current_weights.numpy(), 1.0)
    for a, b in zip(straight.variables + straight.weighting.variables,
                    resumed.variables + resumed.weighting.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_checkpoint_holds_the_state_after_the_epoch_update(tmp_path):
    path = tmp_path / "last.weights.h5"
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(optimizer="adam", weighting=DWA())
    model.fit(*tiny_data(32), batch_size=8, epochs=3, verbose=0,
              callbacks=[keras.callbacks.ModelCheckpoint(path, save_weights_only=True)])
    restored = tiny_model()
    restored.compile(optimizer="adam", weighting=DWA())
    restored.load_weights(path)
    assert restored.weighting.epochs_seen.numpy() == 3
    for a, b in zip(model.weighting.variables, restored.weighting.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
