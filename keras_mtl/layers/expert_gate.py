"""`ExpertGate`: a softmax gate that mixes experts (MMoE, CGC, PLE)."""

import math

import keras
from keras import ops


def mix(weights, experts):
    """`sum_e weights[:, e] * experts[e]`: weights (batch, E), experts of any rank."""
    rank = len(experts[0].shape)
    return sum(
        ops.reshape(ops.cast(weights[:, e], expert.dtype), (-1,) + (1,) * (rank - 1)) * expert
        for e, expert in enumerate(experts)
    )


@keras.saving.register_keras_serializable(package="keras_mtl")
class ExpertGate(keras.layers.Layer):
    """Mixes E same-shaped expert outputs with input-dependent softmax weights.

    `weights = softmax(flatten(gate_input) W)` and `mixture = sum_e weights[:, e] *
    expert_e` (Ma et al., "Modeling Task Relationships in Multi-task Learning with
    Multi-gate Mixture-of-Experts", KDD 2018, eq. 5-6; Tang et al., "Progressive
    Layered Extraction", RecSys 2020, eq. 2-3). Called on `[gate_input, expert_1,
    ..., expert_E]`; returns `(mixture, weights)`, so the weights can be read from
    the graph.

    Args:
        kernel_initializer: initializer of `W` (shape `(gate features, E)`).

    Example:

    ```python
    mixture, weights = ExpertGate()([inputs, expert_a, expert_b, expert_c])
    ```
    """

    def __init__(self, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 2:
            raise ValueError(
                "ExpertGate expects [gate_input, expert_1, ..., expert_E]. "
                f"Received input shape: {input_shape}"
            )
        gate_shape, *expert_shapes = (tuple(s) for s in input_shape)
        if any(s[1:] != expert_shapes[0][1:] for s in expert_shapes):
            raise ValueError(f"Experts must share one shape. Received shapes: {expert_shapes}")
        if any(d is None for d in gate_shape[1:]):
            raise ValueError(f"gate_input needs a fully known shape. Received: {gate_shape}")
        self._gate_features = math.prod(gate_shape[1:])
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self._gate_features, len(expert_shapes)),
            initializer=self.kernel_initializer,
        )

    def call(self, inputs):
        gate_input, *experts = inputs
        flat = ops.reshape(gate_input, (-1, self._gate_features))
        weights = ops.softmax(ops.matmul(ops.cast(flat, self.kernel.dtype), self.kernel), axis=-1)
        return mix(weights, experts), weights

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1]), (input_shape[0][0], len(input_shape) - 1)

    def get_config(self):
        config = super().get_config()
        config.update(kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config
