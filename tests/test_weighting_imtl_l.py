"""IMTL-L against a float64 reference written from Liu et al. (2021): the objective, the
weights, one optimizer step of the scales inside fit, absent tasks, and the state's
`.keras` round trip."""

import keras
import numpy as np

from keras_mtl.weighting import IMTLL
from weighting_utils import TASKS, assert_round_trip, assert_weights_logged, fit_tiny, tiny_data, tiny_model


def test_objective_and_weights():
    method = IMTLL()
    method.build((3,))
    s = np.array([-0.5, 0.3, 1.2])
    method.log_scales.assign(s.astype("float32"))
    losses = np.array([0.7, 2.5, 1e-3])
    objective, weights = method.combine(keras.ops.convert_to_tensor(losses.astype("float32")), training=True)
    np.testing.assert_allclose(weights, np.exp(s), rtol=1e-6)
    np.testing.assert_allclose(float(objective), np.sum(np.exp(s) * losses - s), rtol=1e-6)
    # An absent task's term, regulariser included, is left out.
    objective, _ = method.combine(keras.ops.convert_to_tensor(losses.astype("float32")),
                                  present=keras.ops.convert_to_tensor([True, False, True]))
    np.testing.assert_allclose(float(objective), np.sum((np.exp(s) * losses - s)[[0, 2]]), rtol=1e-6)


def test_one_step_of_the_scales_follows_the_objectives_gradient():
    # One batch, one step, SGD on the scales: s = 0 - lr (exp(0) L_k - 1), with L_k the
    # step's task losses (logged before the update).
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(optimizer="sgd", weighting=IMTLL(), weighting_optimizer=keras.optimizers.SGD(0.1))
    x, y = tiny_data(16)
    logs = model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False).history
    losses = np.array([logs[f"{task}_loss"][0] for task in model.task_names], "float64")
    np.testing.assert_allclose(model.weighting.log_scales.numpy(), -0.1 * (losses - 1.0), rtol=1e-5)


def test_fit_trains_and_round_trips(tmp_path):
    model, history = fit_tiny(IMTLL(), epochs=2, weighting_optimizer=keras.optimizers.Adam(1e-2))
    assert np.all(np.isfinite(history.history["loss"]))
    assert_weights_logged(history, 2)
    assert not np.allclose(model.weighting.log_scales.numpy(), 0.0)
    assert set(model.task_names) == set(TASKS)
    assert_round_trip(model, tmp_path)
