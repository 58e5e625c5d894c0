"""`ExpertGate` against numpy."""

import numpy as np
import keras
import pytest

from keras_mtl.layers import ExpertGate


@pytest.mark.parametrize("expert_shape", [(5, 4), (5, 3, 3, 2)])
def test_mixture_matches_numpy(expert_shape):
    rng = np.random.default_rng(0)
    gate_input = rng.normal(size=(5, 2, 3)).astype("float32")
    experts = [rng.normal(size=expert_shape).astype("float32") for _ in range(3)]
    layer = ExpertGate()
    mixture, weights = (t.numpy() for t in layer([gate_input, *experts]))
    logits = gate_input.reshape(5, -1) @ layer.kernel.numpy()
    expected_weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected_weights /= expected_weights.sum(axis=1, keepdims=True)
    expected = np.einsum("be,eb...->b...", expected_weights, np.stack(experts))
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mixture, expected, rtol=1e-5, atol=1e-6)


def test_config_and_errors():
    layer = ExpertGate(kernel_initializer="zeros", name="g")
    clone = ExpertGate.from_config(layer.get_config())
    assert clone.name == "g" and isinstance(clone.kernel_initializer, keras.initializers.Zeros)
    with pytest.raises(ValueError, match="one shape"):
        ExpertGate()([np.zeros((1, 2), "float32"), np.zeros((1, 3), "float32"), np.zeros((1, 4), "float32")])
