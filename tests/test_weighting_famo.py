"""FAMO: the weighted log-loss objective and the logits' Adam update after each step."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from weighting_utils import assert_round_trip, assert_weights_logged, fit_tiny

from keras_mtl.weighting import FAMO

EPS = 1e-8


class NumpyFAMO:
    """Liu et al. 2023, Algorithm 1, with the authors' Adam (L2 weight decay) on the logits."""

    def __init__(self, k, lr, decay, b1=0.9, b2=0.999, eps=1e-8):
        self.xi, self.m, self.v, self.t = np.zeros(k), np.zeros(k), np.zeros(k), 0
        self.lr, self.decay, self.b1, self.b2, self.eps = lr, decay, b1, b2, eps

    def weights(self, losses):
        z = np.exp(self.xi) / np.exp(self.xi).sum()
        c = 1.0 / np.sum(z / (losses + EPS))
        return c * z / (losses + EPS), z, c

    def update(self, old, new):
        z = np.exp(self.xi) / np.exp(self.xi).sum()
        jacobian = np.diag(z) - np.outer(z, z)
        g = jacobian.T @ (np.log(old + EPS) - np.log(new + EPS)) + self.decay * self.xi
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        m_hat, v_hat = self.m / (1 - self.b1 ** self.t), self.v / (1 - self.b2 ** self.t)
        self.xi = self.xi - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def test_weights_objective_and_logit_updates_match_numpy():
    rng = np.random.default_rng(2)
    layer = FAMO(learning_rate=0.1, weight_decay=0.05)
    layer.build((3,))
    reference = NumpyFAMO(3, 0.1, 0.05)
    losses = np.array([2.0, 0.5, 9.0])
    for _ in range(6):
        new = losses * rng.uniform([0.6, 0.95, 0.85], [0.7, 1.0, 0.95])
        tensor = tf.constant(losses, "float32")
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            objective, weights = layer.combine(tensor, training=True)
        expected, z, c = reference.weights(losses)
        np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-5)
        np.testing.assert_allclose(objective.numpy(), c * np.sum(z * np.log(losses + EPS)),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(tape.gradient(objective, tensor).numpy(), expected, rtol=1e-5)
        layer.post_step(tf.constant(new, "float32"))
        reference.update(losses, new)
        np.testing.assert_allclose(layer.logits.numpy(), reference.xi, rtol=1e-4, atol=1e-7)
        losses = new
    # Task 0 fell fastest, so its weight fell below task 1's (which barely moved).
    z = np.exp(reference.xi)
    assert z[0] < z[2] < z[1]


def test_evaluation_does_not_record_losses():
    layer = FAMO()
    layer.build((2,))
    layer.combine(tf.constant([1.0, 2.0]), training=True)
    layer.combine(tf.constant([5.0, 5.0]), training=False)
    np.testing.assert_array_equal(layer.previous_losses.numpy(), [1.0, 2.0])


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="learning_rate=0"):
        FAMO(learning_rate=0)
    with pytest.raises(ValueError, match="weight_decay=-1"):
        FAMO(weight_decay=-1)


def test_fit_moves_logits_and_round_trips(tmp_path):
    model, history = fit_tiny(FAMO(learning_rate=0.05), epochs=2)
    assert_weights_logged(history, 2)
    per_epoch = np.array([[history.history[f"{n}_weight"][e] for n in model.task_names]
                          for e in range(2)])
    np.testing.assert_allclose(per_epoch.sum(axis=1), 1.0, rtol=1e-5)
    assert model.weighting.updates.numpy() == 8  # 64 examples, batch 16, 2 epochs
    assert np.abs(model.weighting.logits.numpy()).max() > 1e-3
    assert_round_trip(model, tmp_path)
