"""`CrossStitch` against numpy: mixing, initialisation, gradients, config."""

import numpy as np
import keras
import pytest
import tensorflow as tf

from keras_mtl.layers import CrossStitch


def _inputs(n, shape, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape).astype("float32") for _ in range(n)]


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (6, 5)])
def test_mixing_matches_numpy(per_channel, shape):
    xs = _inputs(3, shape)
    layer = CrossStitch(per_channel=per_channel)
    layer.build([x.shape for x in xs])
    alpha = np.random.default_rng(1).uniform(-1, 1, size=layer.alpha.shape).astype("float32")
    layer.alpha.assign(alpha)
    got = [o.numpy() for o in layer(xs)]
    stacked = np.stack(xs)
    if per_channel:
        expected = np.einsum("ijc,j...c->i...c", alpha, stacked)
    else:
        expected = np.einsum("ij,j...->i...", alpha, stacked)
    np.testing.assert_allclose(np.stack(got), expected, rtol=1e-5, atol=1e-6)


def test_initialisation_rows_sum_to_one():
    layer = CrossStitch(alpha_s=0.7)
    layer.build([(None, 4)] * 4)
    alpha = layer.alpha.numpy()
    np.testing.assert_allclose(np.diag(alpha), 0.7)
    np.testing.assert_allclose(alpha[~np.eye(4, dtype=bool)], 0.1, rtol=1e-6)
    np.testing.assert_allclose(alpha.sum(axis=1), 1.0, rtol=1e-6)

    per_channel = CrossStitch(alpha_s=0.9, alpha_d=0.2, per_channel=True)
    per_channel.build([(None, 2, 2, 3)] * 2)
    expected = np.repeat(np.array([[0.9, 0.2], [0.2, 0.9]])[:, :, None], 3, axis=2)
    np.testing.assert_allclose(per_channel.alpha.numpy(), expected, rtol=1e-6)


def test_alpha_gradient_matches_numpy():
    xs = _inputs(2, (4, 3))
    upstream = _inputs(2, (4, 3), seed=5)
    layer = CrossStitch(per_channel=True)
    layer.build([x.shape for x in xs])
    with tf.GradientTape() as tape:
        outs = layer(xs)
        value = sum(tf.reduce_sum(o * u) for o, u in zip(outs, upstream))
    grad = tape.gradient(value, layer.alpha).numpy()
    # d/d alpha[i, j, c] of sum_i <out_i, u_i> = sum over examples of u_i[..., c] * x_j[..., c]
    expected = np.stack([np.einsum("bc,jbc->jc", u, np.stack(xs)) for u in upstream])
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-6)


def test_config_round_trip_and_optimizer_group():
    layer = CrossStitch(alpha_s=0.8, alpha_d=0.05, per_channel=True, name="unit")
    clone = CrossStitch.from_config(layer.get_config())
    assert (clone.alpha_s, clone.alpha_d, clone.per_channel, clone.name) == (0.8, 0.05, True, "unit")
    assert CrossStitch.optimizer_group == "cross_stitch"
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, CrossStitch)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="alpha_s"):
        CrossStitch(alpha_s=1.5)
    with pytest.raises(ValueError, match="alpha_d"):
        CrossStitch(alpha_d=-0.1)
    with pytest.raises(ValueError, match="at least 2"):
        CrossStitch()([np.zeros((1, 3), "float32")])
    with pytest.raises(ValueError, match="one shape"):
        CrossStitch()([np.zeros((1, 3), "float32"), np.zeros((1, 4), "float32")])
