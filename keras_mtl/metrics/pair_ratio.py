"""The base of the pair metrics: a ratio of two counts accumulated over batches."""

import keras
from keras import ops


class PairRatio(keras.metrics.Metric):
    """Accumulates `counts(y_true, y_pred, sample_weight) -> (numerator,
    denominator)` over batches; the result is their ratio (0 before any count).
    The counts are float64: they exceed float32's exact integers from about 4096
    pairs a side."""

    def __init__(self, name, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.numerator = self.add_variable((), "zeros", dtype="float64", name="numerator")
        self.denominator = self.add_variable((), "zeros", dtype="float64", name="denominator")

    def counts(self, y_true, y_pred, sample_weight):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        numerator, denominator = self.counts(y_true, y_pred, sample_weight)
        self.numerator.assign_add(ops.cast(numerator, "float64"))
        self.denominator.assign_add(ops.cast(denominator, "float64"))

    def result(self):
        return ops.cast(ops.divide_no_nan(self.numerator, self.denominator), self.dtype)

    def reset_state(self):
        self.numerator.assign(0.0)
        self.denominator.assign(0.0)
