"""Mean angular error of surface normals."""

import math

import keras
from keras import ops

from keras_mtl.losses.masks import normals_valid, unit_vectors
from keras_mtl.metrics.pixel_mean import PixelMean


def normal_angle_errors(y_true, y_pred):
    """Per-pixel angles in degrees between predicted and true normals (both
    L2-normalised), and the mask of valid labels (finite, non-zero).

    Computed as `atan2(|p x t|, p . t)`, which stays accurate for small angles where
    `arccos` of a float32 dot product does not.
    """
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    y_pred = ops.cast(ops.convert_to_tensor(y_pred), "float32")
    valid = normals_valid(y_true)
    true = unit_vectors(ops.where(ops.isfinite(y_true), y_true, 0.0))
    pred = unit_vectors(y_pred)
    sine = ops.sqrt(ops.sum(ops.square(ops.cross(pred, true)), axis=-1))
    cosine = ops.sum(pred * true, axis=-1)
    return ops.arctan2(sine, cosine) * (180.0 / math.pi), valid


@keras.saving.register_keras_serializable(package="keras_mtl")
class NormalAngleMean(PixelMean):
    """Mean angle (degrees) between predicted and true normals over all valid pixels
    of the epoch (Eigen and Fergus, "Predicting Depth, Surface Normals and Semantic
    Labels with a Common Multi-Scale Convolutional Architecture", ICCV 2015).
    Predictions are normalised first; zero label vectors are missing normals.

    Example: `metrics=[NormalAngleMean(), NormalAngleMedian(), NormalAngleWithin(11.25)]`
    """

    def __init__(self, name="angle_mean", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def pixel_values(self, y_true, y_pred):
        return normal_angle_errors(y_true, y_pred)
