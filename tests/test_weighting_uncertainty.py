"""Uncertainty weighting: objective, gradient, forms and its own optimizer."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from weighting_utils import assert_round_trip, assert_weights_logged, fit_tiny

from keras_mtl.weighting import Uncertainty


def test_objective_weights_and_gradient_match_kendall_et_al():
    s = np.array([-0.5, 0.3, 1.2], "float32")
    losses = np.array([0.7, 2.5, 0.05], "float32")
    layer = Uncertainty(forms=["regression", "classification", "regression"])
    layer.build((3,))
    layer.log_variances.assign(s)
    c = np.array([2.0, 1.0, 2.0])
    with tf.GradientTape() as tape:
        objective, weights = layer.combine(tf.constant(losses), training=True)
    np.testing.assert_allclose(weights.numpy(), np.exp(-s) / c, rtol=1e-6)
    np.testing.assert_allclose(objective.numpy(),
                               np.sum(np.exp(-s) * losses / c + s / 2), rtol=1e-6)
    grad = tape.gradient(objective, layer.log_variances)
    np.testing.assert_allclose(grad.numpy(), -np.exp(-s) * losses / c + 0.5, rtol=1e-5)


def test_default_is_regression_form_started_at_minus_half():
    layer = Uncertainty()
    layer.build((2,))
    np.testing.assert_array_equal(layer.log_variances.numpy(), [-0.5, -0.5])
    weights = layer.task_weights(tf.constant([1.0, 1.0]))
    np.testing.assert_allclose(weights.numpy(), np.exp(0.5) / 2, rtol=1e-6)


def test_minimising_over_s_finds_the_closed_form_optimum():
    # d/ds [exp(-s) L / c + s / 2] = 0  <=>  s = log(2 L / c).
    losses = tf.constant([0.3, 4.0])
    layer = Uncertainty(forms=["classification", "regression"])
    layer.build((2,))
    optimizer = keras.optimizers.Adam(0.05)
    for _ in range(400):
        with tf.GradientTape() as tape:
            objective, _ = layer.combine(losses)
        optimizer.apply([tape.gradient(objective, layer.log_variances)], [layer.log_variances])
    np.testing.assert_allclose(layer.log_variances.numpy(), np.log([0.6, 4.0]), atol=1e-3)


def test_forms_by_task_name_and_errors():
    layer = Uncertainty(forms={"b": "classification"})
    layer.resolve(["a", "b"])
    layer.build((2,))
    np.testing.assert_allclose(layer.task_weights(tf.constant([1.0, 1.0])).numpy(),
                               np.exp(0.5) / np.array([2.0, 1.0]), rtol=1e-6)
    with pytest.raises(ValueError, match="unknown tasks \\['z'\\]"):
        Uncertainty(forms={"z": "regression"}).resolve(["a", "b"])
    with pytest.raises(ValueError, match="forms="):
        Uncertainty(forms=["poisson"])
    wrong = Uncertainty(forms=["regression"])
    wrong.build((2,))
    with pytest.raises(ValueError, match="1 forms for 2 tasks"):
        wrong.task_weights(tf.constant([1.0, 1.0]))


def test_fit_trains_s_with_the_weighting_optimizer_and_round_trips(tmp_path):
    forms = {"cls": "classification", "bin": "classification"}
    frozen, _ = fit_tiny(Uncertainty(forms=forms), epochs=1,
                         weighting_optimizer=keras.optimizers.SGD(0.0))
    np.testing.assert_array_equal(frozen.weighting.log_variances.numpy(), [-0.5] * 3)
    model, history = fit_tiny(Uncertainty(forms=forms), epochs=2,
                              weighting_optimizer=keras.optimizers.Adam(0.05))
    assert_weights_logged(history, 2)
    s = model.weighting.log_variances.numpy()
    assert np.all(np.abs(s + 0.5) > 1e-3)
    # Within an epoch the weight moves with s; the first epoch starts at exp(0.5) / c.
    c = {"cls": 1.0, "bin": 1.0, "reg": 2.0}
    for task in model.task_names:
        first = history.history[f"{task}_weight"][0]
        assert abs(first - np.exp(0.5) / c[task]) < 0.3 * np.exp(0.5) / c[task]
    loaded = assert_round_trip(model, tmp_path)
    # compile completed the forms: "reg" (mean squared error) is a regression task.
    assert loaded.weighting.forms == {**forms, "reg": "regression"}


def test_compile_infers_each_task_form_from_its_loss():
    """The tiny model's tasks: sparse categorical and binary cross-entropy
    (classification), mean squared error (regression)."""
    model, history = fit_tiny("uncertainty", epochs=1)
    forms = {"cls": "classification", "reg": "regression", "bin": "classification"}
    assert model.weighting.get_config()["forms"] == forms
    s = model.weighting.log_variances.numpy()
    divisors = np.array([1.0 if forms[t] == "classification" else 2.0 for t in model.task_names])
    np.testing.assert_allclose(model.weighting.task_weights(tf.ones(3)).numpy(), np.exp(-s) / divisors,
                               rtol=1e-6)


def test_given_forms_win_over_inferred_ones():
    model, _ = fit_tiny(Uncertainty(forms={"cls": "regression"}), epochs=1)
    assert model.weighting.get_config()["forms"] == {
        "cls": "regression", "reg": "regression", "bin": "classification"}
