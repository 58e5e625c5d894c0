"""GradNorm: the closed-form weight gradient, renormalisation, and the train step."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from weighting_utils import assert_round_trip, assert_weights_logged, fit_tiny, tiny_data, tiny_model

from keras_mtl.weighting import GradNorm


def _numpy_gradnorm_grad(weights, losses, initial_losses, kernel_grads, alpha):
    """d/dw of sum_k |G_k - mean(G) r_k^alpha| with the targets held constant."""
    norms = np.linalg.norm(kernel_grads, axis=1)
    g = weights * norms
    ratios = losses / initial_losses
    targets = g.mean() * (ratios / ratios.mean()) ** alpha
    return np.sign(g - targets) * norms


def _renormalised(w, min_weight=1e-3):
    w = np.maximum(w, min_weight)
    return len(w) * w / w.sum()


def test_weight_gradient_matches_numpy_and_autodiff_over_a_loss_history():
    rng = np.random.default_rng(0)
    layer = GradNorm(alpha=1.5)
    layer.build((3,))
    history = [np.array([1.0, 2.0, 0.5]), np.array([0.6, 1.9, 0.45]), np.array([0.3, 1.5, 0.2])]
    for step, losses in enumerate(history):
        weights = np.array([0.5, 1.7, 0.8]) if step else np.ones(3)
        layer.loss_weights.assign(weights)
        grads = rng.normal(size=(3, 12)) * np.array([[1.0], [0.2], [3.0]])
        got = layer.weighting_gradients(tf.constant(losses, "float32"),
                                        tf.constant(grads, "float32"))[0].numpy()
        expected = _numpy_gradnorm_grad(weights, losses, history[0], grads, 1.5)
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        # The same gradient by autodiff of the L1 GradNorm loss.
        w = tf.Variable(weights, dtype="float32")
        with tf.GradientTape() as tape:
            g = w * tf.norm(tf.constant(grads, "float32"), axis=1)
            r = tf.constant(losses / history[0] / np.mean(losses / history[0]), "float32")
            target = tf.stop_gradient(tf.reduce_mean(g) * r ** 1.5)
            gradnorm_loss = tf.reduce_sum(tf.abs(g - target))
        np.testing.assert_allclose(got, tape.gradient(gradnorm_loss, w).numpy(), rtol=1e-5)
    np.testing.assert_allclose(layer.initial_losses.numpy(), history[0], rtol=1e-6)


def test_renormalisation_constraint_clips_and_sums_to_k():
    layer = GradNorm(min_weight=0.01)
    layer.build((4,))
    raw = np.array([2.0, -0.5, 0.7, 1.1], "float32")
    np.testing.assert_allclose(layer.loss_weights.constraint(tf.constant(raw)).numpy(),
                               _renormalised(raw, 0.01), rtol=1e-6)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="alpha=-1"):
        GradNorm(alpha=-1)
    with pytest.raises(ValueError, match="min_weight=0"):
        GradNorm(min_weight=0)


def _losses_and_kernel_grads(model, x, y):
    """Per-task losses and gradients of the last shared kernel, by a hand-written tape."""
    losses_fn = {"cls": keras.losses.SparseCategoricalCrossentropy(),
                 "reg": keras.losses.MeanSquaredError(),
                 "bin": keras.losses.BinaryCrossentropy()}
    kernel = model.last_shared_kernel
    with tf.GradientTape(persistent=True) as tape:
        pred = model(x, training=True)
        losses = [losses_fn[n](y[n], pred[n]) for n in model.task_names]
    grads = np.stack([np.ravel(tape.gradient(l, kernel)) for l in losses])
    return np.array([float(l) for l in losses]), grads


def test_train_steps_update_weights_by_sgd_on_the_gradnorm_loss_then_renormalise():
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), weighting=GradNorm(alpha=0.5),
                  weighting_optimizer=keras.optimizers.SGD(0.05))
    x, y = tiny_data(n=32)
    weights, initial = np.ones(3), None
    for _ in range(3):
        losses, grads = _losses_and_kernel_grads(model, x, y)
        initial = losses if initial is None else initial
        expected = _renormalised(
            weights - 0.05 * _numpy_gradnorm_grad(weights, losses, initial, grads, 0.5))
        model.train_on_batch(x, y)
        weights = model.weighting.loss_weights.numpy()
        np.testing.assert_allclose(weights, expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(weights, 1.0, atol=1e-3)


def test_fit_keeps_weights_summing_to_k_and_round_trips(tmp_path):
    model, history = fit_tiny("gradnorm", epochs=2,
                              weighting_optimizer=keras.optimizers.Adam(0.05))
    assert_weights_logged(history, 2)
    per_epoch = np.array([[history.history[f"{n}_weight"][e] for n in model.task_names]
                          for e in range(2)])
    np.testing.assert_allclose(per_epoch.sum(axis=1), 3.0, rtol=1e-5)
    np.testing.assert_allclose(model.weighting.loss_weights.numpy().sum(), 3.0, rtol=1e-5)
    assert model.weighting.initialised.numpy() == 1.0
    assert_round_trip(model, tmp_path)


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_logged_weights_are_those_each_step_used(steps_per_execution):
    # The weights of each step are read when its objective is formed, before its own
    # update of them: the epoch mean of two steps is the mean of the initial weights
    # and the weights after the first step.
    x, y = tiny_data(32)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(0.05), weighting="gradnorm",
                  steps_per_execution=steps_per_execution)
    used = [model.weighting.loss_weights.numpy().copy()]
    reference = tiny_model()
    reference.set_weights(model.get_weights())
    reference.compile(optimizer=keras.optimizers.SGD(0.05), weighting="gradnorm")
    reference.train_on_batch(x[:16], {k: v[:16] for k, v in y.items()})
    used.append(reference.weighting.loss_weights.numpy().copy())
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False).history
    assert not np.allclose(used[0], used[1])
    logged = [history[f"{t}_weight"][0] for t in model.task_names]
    np.testing.assert_allclose(logged, np.mean(used, axis=0), rtol=1e-5)
