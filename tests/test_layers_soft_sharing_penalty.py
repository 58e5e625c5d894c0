"""`SoftSharingPenalty` and the "soft_sharing" architecture: penalty and gradient
against numpy, logging, and the tied layers found again after a `.keras` round trip."""

import numpy as np
import keras
import pytest
import tensorflow as tf

import keras_mtl
from keras_mtl.architectures import soft_sharing  # noqa: F401  (registers)
from keras_mtl.backbones import mlp
from keras_mtl.layers import SoftSharingPenalty

TASKS = ("a", "b", "c")


def _model(norm="l2", weight=0.5):
    tasks = [keras_mtl.Task(n, head=1, loss="mse") for n in TASKS]
    return keras_mtl.build("soft_sharing", tasks, backbone=lambda s: mlp(s, units=(4, 3)),
                           input_shape=(5,), weight=weight, norm=norm)


def _columns(model, layer):
    """Per variable of backbone layer `layer`, its values in the columns (numpy)."""
    per_task = [model.get_layer(f"{t}_{layer}").trainable_variables for t in TASKS]
    return [[v.numpy() for v in copies] for copies in zip(*per_task)]


def _numpy_penalty(model, norm, weight):
    total = 0.0
    for layer in ("dense1", "dense2"):
        for copies in _columns(model, layer):
            rows = np.stack([c.ravel() for c in copies]).astype("float64")
            if norm == "l2":
                total += sum(np.sum((rows[i] - rows[j]) ** 2) for i in range(3) for j in range(i + 1, 3))
            else:
                total += np.linalg.svd(rows, compute_uv=False).sum()
    return weight * total


@pytest.mark.parametrize("norm", ["l2", "trace"])
def test_penalty_and_added_loss_match_numpy(norm):
    model = _model(norm)
    penalty = model.get_layer("soft_sharing_penalty")
    expected = _numpy_penalty(model, norm, 0.5)
    np.testing.assert_allclose(float(penalty.penalty()), expected, rtol=1e-5)
    model(np.zeros((2, 5), "float32"))
    assert len(model.losses) == 1
    np.testing.assert_allclose(float(model.losses[0]), expected, rtol=1e-5)


def test_l2_gradient_pulls_columns_together():
    model = _model("l2", weight=0.5)
    penalty = model.get_layer("soft_sharing_penalty")
    kernels = [model.get_layer(f"{t}_dense1").kernel for t in TASKS]
    with tf.GradientTape() as tape:
        value = penalty.penalty()
    grads = tape.gradient(value, kernels)
    values = [k.numpy() for k in kernels]
    for a in range(3):
        expected = 0.5 * 2 * sum(values[a] - values[b] for b in range(3) if b != a)
        np.testing.assert_allclose(grads[a].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_penalty_is_logged_and_survives_saving(tmp_path):
    model = _model("l2", weight=0.5)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5)).astype("float32")
    y = {t: rng.normal(size=(16, 1)).astype("float32") for t in TASKS}
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    start = _numpy_penalty(model, "l2", 0.5)
    history = model.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), verbose=0).history
    end = _numpy_penalty(model, "l2", 0.5)
    np.testing.assert_allclose(history["soft_sharing_penalty"][-1], end, rtol=1e-4)
    np.testing.assert_allclose(history["val_soft_sharing_penalty"][-1], end, rtol=1e-4)
    assert end < start
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(float(loaded.get_layer("soft_sharing_penalty").penalty()), end, rtol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="norm"):
        SoftSharingPenalty([["x", "y"]], norm="l1")
    with pytest.raises(ValueError, match="groups"):
        SoftSharingPenalty([["x"]])
    with pytest.raises(ValueError, match="tied_layers"):
        keras_mtl.build("soft_sharing", [keras_mtl.Task(n, head=1) for n in "ab"], backbone="mlp",
                        input_shape=(5,), tied_layers=["nope"])
