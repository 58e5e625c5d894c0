"""Masked L1 depth loss."""

import keras
from keras import ops

from keras_mtl.losses.masks import depth_map, depth_valid, per_example_mean


@keras.saving.register_keras_serializable(package="keras_mtl")
class DepthL1(keras.losses.Loss):
    """Mean absolute depth error over each image's valid pixels.

    The depth loss of MTAN (Liu et al., "End-to-End Multi-Task Learning with
    Attention", CVPR 2019). Labels that are 0, negative or not finite are missing
    depth and add nothing. The per-image means are reduced over the batch by
    `reduction`.

    Labels `(B, H, W, 1)` or `(B, H, W)`; predictions `(B, H, W, 1)`.

    Example:

    ```python
    keras_mtl.Task("depth", head=keras.layers.Conv2D(1, 1), loss=DepthL1())
    ```
    """

    def __init__(self, reduction="sum_over_batch_size", name="depth_l1", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_true = depth_map(y_true, y_pred)
        valid = depth_valid(y_true)
        y_true = ops.where(valid, y_true, 0.0)
        return per_example_mean(ops.abs(y_pred - y_true), valid)
