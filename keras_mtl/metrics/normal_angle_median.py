"""Median angular error of surface normals, from a fine histogram."""

import keras
from keras import ops

from keras_mtl.losses.masks import pixel_weights
from keras_mtl.metrics.normal_angle_mean import normal_angle_errors


@keras.saving.register_keras_serializable(package="keras_mtl")
class NormalAngleMedian(keras.metrics.Metric):
    """Median angle (degrees) between predicted and true normals over all valid
    pixels of the epoch (Eigen and Fergus, ICCV 2015).

    The state is a histogram of the angles in `bins` equal bins over [0, 180]
    degrees (a fixed-size variable, so the metric runs inside compiled and
    distributed steps); the median is read off it with linear interpolation inside
    the bin that holds it. The result is within one bin width (180 / bins degrees,
    0.01 by default) of the lower median order statistic of the angles, and so of
    the exact median whenever the two middle angles share a bin.

    Args:
        bins: number of histogram bins.
        name, dtype: as for any Keras metric.
    """

    def __init__(self, bins=18000, name="angle_median", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if int(bins) != bins or bins < 1:
            raise ValueError(f"bins must be an integer >= 1. Received: bins={bins!r}")
        self.bins = int(bins)
        self.histogram = self.add_variable((self.bins,), "zeros", dtype="float32", name="histogram")

    def update_state(self, y_true, y_pred, sample_weight=None):
        angles, valid = normal_angle_errors(y_true, y_pred)
        index = ops.cast(ops.floor(angles * (self.bins / 180.0)), "int32")
        index = ops.where(valid, ops.clip(index, 0, self.bins - 1), 0)
        weights = pixel_weights(valid, sample_weight)
        self.histogram.assign_add(ops.segment_sum(
            ops.reshape(weights, (-1,)), ops.reshape(index, (-1,)), num_segments=self.bins))

    def result(self):
        counts = self.histogram
        cumulative = ops.cumsum(counts)
        half = cumulative[-1] / 2.0
        k = ops.argmax(ops.cast(cumulative >= half, "int32"))
        below = cumulative[k] - counts[k]
        fraction = ops.divide_no_nan(half - below, counts[k])
        median = (ops.cast(k, "float32") + fraction) * (180.0 / self.bins)
        return ops.where(cumulative[-1] > 0, median, 0.0)

    def get_config(self):
        return {**super().get_config(), "bins": self.bins}
