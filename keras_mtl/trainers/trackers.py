"""The epoch means a multi-task trainer logs per task (`<task>_loss`, `<task>_weight`)."""

import keras
from keras import ops


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

