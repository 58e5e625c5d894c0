"""`TaskAttention` (MTAN's attention module) against numpy."""

import numpy as np
import keras
import pytest

from keras_mtl.layers import TaskAttention


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _batch_norm(z, gamma, beta, mean, var, epsilon):
    return (z - mean) / np.sqrt(var + epsilon) * gamma + beta


def _randomised(layer, rng):
    """Gives every weight (moving statistics included) a non-trivial value."""
    for v in layer.weights:
        value = rng.uniform(0.5, 1.5, size=v.shape) if "variance" in v.path else rng.normal(size=v.shape)
        v.assign(value.astype("float32"))


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("shapes", [((2, 4, 5, 6), (2, 4, 5, 3)), ((7, 6), (7, 4))])
def test_mask_matches_numpy(training, shapes):
    rng = np.random.default_rng(0)
    a = rng.normal(size=shapes[0]).astype("float32")
    f = rng.normal(size=shapes[1]).astype("float32")
    layer = TaskAttention(hidden_units=5)
    layer.build([a.shape, f.shape])
    _randomised(layer, rng)
    attended, mask = (t.numpy() for t in layer([a, f], training=training))

    eps = layer.epsilon
    axes = tuple(range(a.ndim - 1))

    def norm(z, bn):
        if training:
            return _batch_norm(z, bn.gamma.numpy(), bn.beta.numpy(), z.mean(axis=axes), z.var(axis=axes), eps)
        return _batch_norm(z, bn.gamma.numpy(), bn.beta.numpy(), bn.moving_mean.numpy(),
                           bn.moving_variance.numpy(), eps)

    hidden = np.maximum(norm(a @ layer.hidden_projection.kernel.numpy(), layer.hidden_norm), 0)
    expected_mask = _sigmoid(norm(hidden @ layer.mask_projection.kernel.numpy(), layer.mask_norm))
    np.testing.assert_allclose(mask, expected_mask, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(attended, f * expected_mask, rtol=1e-4, atol=1e-5)
    assert mask.shape == f.shape and np.all((mask > 0) & (mask < 1))


def test_config_round_trip():
    layer = TaskAttention(hidden_units=7, momentum=0.5, epsilon=1e-3, name="att")
    clone = TaskAttention.from_config(layer.get_config())
    assert (clone.hidden_units, clone.momentum, clone.epsilon, clone.name) == (7, 0.5, 1e-3, "att")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, TaskAttention)


def test_errors():
    with pytest.raises(ValueError, match="hidden_units"):
        TaskAttention(hidden_units=0)
    with pytest.raises(ValueError, match="every axis but the last"):
        TaskAttention()([np.zeros((1, 4, 4, 2), "float32"), np.zeros((1, 2, 2, 2), "float32")])
