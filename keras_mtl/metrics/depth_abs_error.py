"""Mean absolute depth error."""

import keras
from keras import ops

from keras_mtl.losses.masks import depth_map, depth_valid
from keras_mtl.metrics.pixel_mean import PixelMean


def depth_errors(y_true, y_pred):
    """Per-pixel `|prediction - label|`, the labels (1 where invalid, so that they can
    divide) and the mask of valid labels (finite and > 0)."""
    y_pred = ops.cast(y_pred, "float32")
    y_true = depth_map(y_true, y_pred)
    valid = depth_valid(y_true)
    y_true = ops.where(valid, y_true, 1.0)
    return ops.abs(y_pred - y_true), y_true, valid


@keras.saving.register_keras_serializable(package="keras_mtl")
class DepthAbsError(PixelMean):
    """`mean |prediction - label|` over all valid depth pixels of the epoch (MTAN's
    "Abs Err", Liu et al., CVPR 2019). Labels that are 0, negative or not finite
    are missing depth and not counted.

    Example: `metrics=[DepthAbsError(), DepthRelError()]`
    """

    def __init__(self, name="abs_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def pixel_values(self, y_true, y_pred):
        errors, _, valid = depth_errors(y_true, y_pred)
        return errors, valid
