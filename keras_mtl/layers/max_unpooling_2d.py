"""`MaxUnpooling2D`: SegNet's index-preserving upsampling."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_mtl")
class MaxUnpooling2D(keras.layers.Layer):
    """Inverts a 2x2, stride 2 max pooling: puts each value where its window's
    maximum was and zeros elsewhere (Badrinarayanan et al., "SegNet", TPAMI 2017).

    Called on `[values, pooled_from]`: `pooled_from` is the (B, 2H, 2W, C) tensor
    that was max-pooled, `values` the (B, H, W, C) tensor to place. The first
    maximum of a window (row-major) wins ties, like PyTorch's `max_pool2d` indices.

    Example:

    ```python
    pooled = keras.layers.MaxPooling2D(2)(features)
    upsampled = MaxUnpooling2D()([decoded, features])
    ```
    """

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(f"MaxUnpooling2D expects [values, pooled_from]. Received input shape: {input_shape}")
        values, pooled_from = (tuple(s) for s in input_shape)
        if len(values) != 4 or len(pooled_from) != 4:
            raise ValueError(f"MaxUnpooling2D expects 4-D tensors. Received shapes: {values}, {pooled_from}")
        expected = (values[1] and 2 * values[1], values[2] and 2 * values[2], values[3])
        if any(e is not None and p is not None and e != p for e, p in zip(expected, pooled_from[1:])):
            raise ValueError(
                "pooled_from must have twice the height and width of values and the same "
                f"channels. Received shapes: values={values}, pooled_from={pooled_from}"
            )

    def call(self, inputs):
        values, pooled_from = inputs
        shape = ops.shape(values)
        h, w, c = shape[1], shape[2], shape[3]
        windows = ops.reshape(pooled_from, (-1, h, 2, w, 2, c))
        windows = ops.reshape(ops.transpose(windows, (0, 1, 3, 5, 2, 4)), (-1, h, w, c, 4))
        where = ops.one_hot(ops.argmax(windows, axis=-1), 4, dtype=values.dtype)
        placed = ops.reshape(where * values[..., None], (-1, h, w, c, 2, 2))
        return ops.reshape(ops.transpose(placed, (0, 1, 4, 2, 5, 3)), (-1, 2 * h, 2 * w, c))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1])
