"""The mean of a per-pixel quantity over every valid pixel of an epoch."""

import keras
from keras import ops

from keras_mtl.losses.masks import pixel_weights


class PixelMean(keras.metrics.Metric):
    """Base of metrics that average a per-pixel value over all valid pixels seen
    since the last reset (a sum and a count in variables, not a mean of batch means).

    Subclasses implement `pixel_values(y_true, y_pred) -> (values, valid)`. A sample
    weight, per example or per pixel, weighs the pixels.
    """

    def __init__(self, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable((), "zeros", dtype="float32", name="total")
        self.count = self.add_variable((), "zeros", dtype="float32", name="count")

    def pixel_values(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        values, valid = self.pixel_values(y_true, y_pred)
        weights = pixel_weights(valid, sample_weight)
        values = ops.where(valid, ops.cast(values, "float32"), 0.0)
        self.total.assign_add(ops.sum(values * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)
