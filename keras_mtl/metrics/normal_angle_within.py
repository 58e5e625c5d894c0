"""Fraction of surface normals within an angle of the truth."""

import keras
from keras import ops

from keras_mtl.metrics.normal_angle_mean import normal_angle_errors
from keras_mtl.metrics.pixel_mean import PixelMean


@keras.saving.register_keras_serializable(package="keras_mtl")
class NormalAngleWithin(PixelMean):
    """The fraction of valid pixels of the epoch whose angular error is below
    `threshold` degrees (Eigen and Fergus, ICCV 2015, report 11.25, 22.5 and 30).

    Args:
        threshold: the angle in degrees, in (0, 180].
        name: defaults to `within_<threshold>` (e.g. `within_11.25`).
        dtype: as for any Keras metric.
    """

    def __init__(self, threshold=11.25, name=None, dtype=None):
        if not 0 < threshold <= 180:
            raise ValueError(f"threshold must be in (0, 180] degrees. Received: threshold={threshold!r}")
        self.threshold = float(threshold)
        super().__init__(name=name or f"within_{self.threshold:g}", dtype=dtype)

    def pixel_values(self, y_true, y_pred):
        angles, valid = normal_angle_errors(y_true, y_pred)
        return ops.cast(angles < self.threshold, "float32"), valid

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}
