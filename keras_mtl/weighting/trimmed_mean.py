"""Trimmed mean: per coordinate, the mean of the task gradients without the extremes."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_int
from keras_mtl.weighting.base import GradientWeighting, present_mask
from keras_mtl.weighting.registry import register


@register("trimmed_mean")
@keras.saving.register_keras_serializable(package="keras_mtl")
class TrimmedMean(GradientWeighting):
    """Coordinate-wise trimmed mean, a Byzantine-robust aggregation: in each coordinate,
    drop the `trim_number` largest and smallest of the `n` present tasks' values and
    average the others; the update is that mean times `n`, the scale of the summed
    gradients. It needs the K x P matrix itself, not only its Gramian.

    The logged weight of task k is `n / (n - 2 t)` times the share of its gradient's L1
    mass that was kept (a value equal to a kept extreme counts as kept). With
    `n <= 2 t` present tasks nothing is kept and the update is 0.

    Reference: Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust Distributed
    Learning: Towards Optimal Statistical Rates", ICML 2018 (their trimmed mean with
    `beta n = trim_number`).

    Args:
        trim_number: `t`, how many values to drop at each end of every coordinate
            (>= 0; the model needs at least `2 t + 1` tasks).
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting=TrimmedMean(trim_number=1))`
    """

    def __init__(self, trim_number, gradient_mode="shared_parameters", **kwargs):
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        self.trim_number = check_int("trim_number", trim_number, minimum=0)

    def build(self, input_shape):
        super().build(input_shape)
        if self.num_tasks < 2 * self.trim_number + 1:
            raise ValueError(
                f"TrimmedMean needs at least 2 * trim_number + 1 tasks; the model has "
                f"{self.num_tasks}. Received: trim_number={self.trim_number}")

    def combine_gradients(self, grads, losses, present=None):
        k = self.num_tasks
        present = present_mask(present, k)
        matrix = ops.cast(grads, keras.config.floatx())
        # Per coordinate, the present values in increasing order (absent tasks last).
        ordered = ops.sort(ops.where(present[:, None], matrix, float("inf")), axis=0)
        count = ops.sum(ops.cast(present, "int32"))
        rows = ops.arange(k, dtype="int32")[:, None]
        middle = (rows >= self.trim_number) & (rows < count - self.trim_number)
        scale = ops.divide_no_nan(ops.cast(count, matrix.dtype),
                                  ops.cast(ops.maximum(count - 2 * self.trim_number, 0), matrix.dtype))
        combined = scale * ops.sum(ops.where(middle, ordered, 0.0), axis=0)
        # A task's value is kept where it lies between the kept extremes.
        lowest = ops.sum(ops.where(rows == self.trim_number, ordered, 0.0), axis=0)
        highest = ops.sum(ops.where(rows == count - self.trim_number - 1, ordered, 0.0), axis=0)
        kept = present[:, None] & (matrix >= lowest) & (matrix <= highest) & ops.any(middle)
        mass = ops.abs(matrix)
        weights = scale * ops.divide_no_nan(ops.sum(ops.where(kept, mass, 0.0), axis=1), ops.sum(mass, axis=1))
        return ops.cast(combined, grads.dtype), weights

    def get_config(self):
        config = super().get_config()
        config["trim_number"] = self.trim_number
        return config
