"""`TaskAttention`: the attention module of MTAN (Liu et al., CVPR 2019)."""

import keras
from keras import ops
from keras_mtl.layers.batch_norm import GlobalBatchNormalization


@keras.saving.register_keras_serializable(package="keras_mtl")
class TaskAttention(keras.layers.Layer):
    """A task's soft mask over shared features (Liu, Johns and Davison, "End-to-End
    Multi-Task Learning with Attention", CVPR 2019, eq. 1).

    `mask = sigmoid(BN(relu(BN(a W1)) W2))`, with `W1`, `W2` per-position projections
    of the last axis (1x1 convolutions on images) of the attention input `a`;
    the layer returns `(mask * features, mask)`. The mask has the features' channels.
    In MTAN, `a` is the shared block's first-layer features concatenated with the
    previous attention module's output. Batch normalization uses the reference
    code's PyTorch defaults (momentum 0.1, i.e. Keras momentum 0.9; epsilon 1e-5).

    Args:
        hidden_units: channels of the hidden projection (default: the features').
        momentum, epsilon: batch normalization settings.

    Example:

    ```python
    attended, mask = TaskAttention()([attention_input, shared_features])
    ```
    """

    def __init__(self, hidden_units=None, momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        if hidden_units is not None and (isinstance(hidden_units, bool) or int(hidden_units) < 1):
            raise ValueError(f"hidden_units must be a positive integer. Received: hidden_units={hidden_units!r}")
        self.hidden_units = None if hidden_units is None else int(hidden_units)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(
                "TaskAttention expects [attention_input, features]. "
                f"Received input shape: {input_shape}"
            )
        attention_shape, features_shape = (tuple(s) for s in input_shape)
        if attention_shape[1:-1] != features_shape[1:-1]:
            raise ValueError(
                "attention_input and features must share every axis but the last. Received "
                f"shapes: attention_input={attention_shape}, features={features_shape}"
            )
        channels = features_shape[-1]
        hidden = self.hidden_units or channels
        hidden_shape = attention_shape[:-1] + (hidden,)
        self.hidden_projection = keras.layers.Dense(hidden, use_bias=False, name="hidden_projection")
        self.hidden_norm = GlobalBatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, name="hidden_norm")
        self.mask_projection = keras.layers.Dense(channels, use_bias=False, name="mask_projection")
        self.mask_norm = GlobalBatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, name="mask_norm")
        self.hidden_projection.build(attention_shape)
        self.hidden_norm.build(hidden_shape)
        self.mask_projection.build(hidden_shape)
        self.mask_norm.build(features_shape)

    def call(self, inputs, training=None):
        attention_input, features = inputs
        hidden = ops.relu(self.hidden_norm(self.hidden_projection(attention_input), training=training))
        mask = ops.sigmoid(self.mask_norm(self.mask_projection(hidden), training=training))
        return features * mask, mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1]), tuple(input_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(hidden_units=self.hidden_units, momentum=self.momentum, epsilon=self.epsilon)
        return config
