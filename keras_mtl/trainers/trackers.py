"""The epoch means a multi-task trainer logs per task (`<task>_loss`, `<task>_weight`),
and the count of steps that `on_nonfinite="skip"` skipped (`skipped_steps`)."""

import warnings

import keras
from keras import ops

from keras_mtl import _distribute


class PerTaskMean(keras.metrics.Metric):
    """Weighted epoch means of a per-task quantity, logged as `<task><suffix>`; one
    metric with two (K,) variables costs two updates per step, not 2K."""

    def __init__(self, task_names, suffix, name):
        super().__init__(name=name)
        self.task_names, self.suffix = list(task_names), suffix
        self.total = self.add_variable((len(task_names),), "zeros", name="total")
        self.count = self.add_variable((len(task_names),), "zeros", name="count")

    def update_state(self, values, sample_weight):
        self.total.assign_add(values * sample_weight)
        self.count.assign_add(sample_weight)

    def reset_state(self):
        self.total.assign(ops.zeros(self.total.shape, self.total.dtype))
        self.count.assign(ops.zeros(self.count.shape, self.count.dtype))

    def result(self):
        means = ops.unstack(ops.divide_no_nan(self.total, self.count))
        return {f"{n}{self.suffix}": m for n, m in zip(self.task_names, means)}


class SkippedSteps(keras.metrics.Metric):
    """The number of training steps that `on_nonfinite="skip"` skipped in the epoch,
    logged as `skipped_steps`; `check` warns when there were some and raises when the
    epoch had no other step (training cannot progress: a diverging learning rate, or
    data that is non-finite throughout)."""

    def __init__(self):
        super().__init__(name="skipped_steps", dtype="float32")
        self.skipped = self.add_variable((), "zeros", name="skipped")
        self.steps = self.add_variable((), "zeros", name="steps")

    def update_state(self, finite):
        # Every replica of a tf.distribute step counts it; the sum counts it once.
        share = 1.0 / _distribute.num_replicas()
        self.skipped.assign_add(share * (1.0 - ops.cast(finite, self.dtype)))
        self.steps.assign_add(share)

    def result(self):
        return ops.round(self.skipped)

    def check(self, epoch):
        skipped, steps = round(float(self.skipped.numpy())), round(float(self.steps.numpy()))
        if skipped and skipped == steps:
            raise FloatingPointError(
                f"keras_mtl: every one of the {steps} training steps of epoch {epoch} was "
                "skipped for a non-finite task loss or gradient (on_nonfinite='skip'): "
                "training cannot progress. Check the data for NaN/Inf and lower the "
                "learning rate; compile(on_nonfinite='raise') names the first failing "
                "step and its tasks.")
        if skipped:
            warnings.warn(
                f"keras_mtl: on_nonfinite='skip' skipped {skipped} of {steps} training steps "
                f"in epoch {epoch} for a non-finite task loss or gradient (logged as "
                "`skipped_steps`).", stacklevel=2)
