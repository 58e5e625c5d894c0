"""GLS: the geometric mean of the task losses."""

import numpy as np
import tensorflow as tf
from weighting_utils import assert_round_trip, assert_weights_logged, fit_tiny

from keras_mtl.weighting import GLS


def test_objective_is_the_kth_root_of_the_product_and_weights_its_gradient():
    layer = GLS()
    layer.build((4,))
    for losses in ([0.2, 1.5, 3.0, 0.01], [5.0, 5.0, 5.0, 5.0], [1e-3, 40.0, 2.0, 0.7]):
        losses = tf.constant(losses)
        with tf.GradientTape() as tape:
            tape.watch(losses)
            objective, weights = layer.combine(losses, training=True)
        product = np.prod(losses.numpy().astype("float64"))
        np.testing.assert_allclose(objective.numpy(), product ** 0.25, rtol=1e-5)
        np.testing.assert_allclose(weights.numpy(), product ** 0.25 / (4 * losses.numpy()), rtol=1e-5)
        np.testing.assert_allclose(tape.gradient(objective, losses).numpy(), weights.numpy(), rtol=1e-5)
        np.testing.assert_allclose(layer.task_weights(losses).numpy(), weights.numpy())


def test_zero_loss_stays_finite():
    layer = GLS()
    layer.build((2,))
    objective, weights = layer.combine(tf.constant([0.0, 2.0]))
    assert np.isfinite(objective.numpy()) and np.all(np.isfinite(weights.numpy()))


def test_fit_and_round_trip(tmp_path):
    model, history = fit_tiny("gls", epochs=2)
    assert_weights_logged(history, 2)
    # Small losses weigh more: the weight is inversely proportional to the loss.
    logs = history.history
    names = model.task_names
    by_loss = sorted(names, key=lambda n: logs[f"{n}_loss"][-1])
    assert logs[f"{by_loss[0]}_weight"][-1] > logs[f"{by_loss[-1]}_weight"][-1]
    assert_round_trip(model, tmp_path)
