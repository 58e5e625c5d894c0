"""`CrossStitch`: the cross-stitch unit of Misra et al. (CVPR 2016)."""

import keras
import numpy as np
from keras import ops


def _check_fraction(value, argument):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be a number in [0, 1]. Received: {argument}={value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{argument} must be in [0, 1]. Received: {argument}={value}")
    return value


@keras.saving.register_keras_serializable(package="keras_mtl")
class CrossStitch(keras.layers.Layer):
    """Mixes the same-shaped activations of N >= 2 task columns with learned weights.

    Output i is `sum_j alpha[i, j] * x_j` (Misra et al., "Cross-stitch Networks for
    Multi-task Learning", CVPR 2016, eq. 1, generalised to N columns). With
    `per_channel=True` there is one alpha per column pair and channel (last axis).

    The units need a much larger learning rate than the columns (the paper used
    10^2 to 10^3 times the base rate): their variables belong to the optimizer group
    `optimizer_group = "cross_stitch"`.

    Args:
        alpha_s: initial weight of a column's own activation (diagonal of alpha).
        alpha_d: initial weight of each other column's activation; by default
            `(1 - alpha_s) / (N - 1)`, so that every row of alpha sums to 1.
        per_channel: one alpha per column pair and channel instead of per pair.

    Example:

    ```python
    a, b = CrossStitch(alpha_s=0.9)([features_a, features_b])
    ```
    """

    optimizer_group = "cross_stitch"

    def __init__(self, alpha_s=0.9, alpha_d=None, per_channel=False, **kwargs):
        super().__init__(**kwargs)
        self.alpha_s = _check_fraction(alpha_s, "alpha_s")
        self.alpha_d = None if alpha_d is None else _check_fraction(alpha_d, "alpha_d")
        self.per_channel = bool(per_channel)

    def initial_alpha(self, num_columns):
        """The initial (N, N) mixing matrix."""
        alpha_d = self.alpha_d if self.alpha_d is not None else (1.0 - self.alpha_s) / (num_columns - 1)
        return alpha_d + (self.alpha_s - alpha_d) * np.eye(num_columns)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) < 2 or not all(
            isinstance(s, (list, tuple)) for s in input_shape
        ):
            raise ValueError(
                "CrossStitch expects a list of at least 2 tensors (one per column). "
                f"Received input shape: {input_shape}"
            )
        shapes = [tuple(s[1:]) for s in input_shape]
        if any(s != shapes[0] for s in shapes):
            raise ValueError(f"CrossStitch inputs must share one shape. Received shapes: {shapes}")
        n = len(shapes)
        alpha = self.initial_alpha(n)
        if self.per_channel:
            channels = shapes[0][-1]
            if channels is None:
                raise ValueError(f"per_channel=True needs a known last axis. Received shapes: {shapes}")
            alpha = np.repeat(alpha[:, :, None], channels, axis=2)
        self.alpha = self.add_weight(
            name="alpha",
            shape=alpha.shape,
            initializer=lambda shape, dtype=None: ops.cast(alpha, dtype),
        )

    def call(self, inputs):
        n = len(inputs)
        return [
            sum(ops.cast(self.alpha[i, j], inputs[j].dtype) * inputs[j] for j in range(n))
            for i in range(n)
        ]

    def compute_output_shape(self, input_shape):
        return list(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(alpha_s=self.alpha_s, alpha_d=self.alpha_d, per_channel=self.per_channel)
        return config
