"""Geometric Loss Strategy (GLS)."""

import keras
from keras import ops

from keras_mtl.weighting.base import Weighting, present_mask
from keras_mtl.weighting.registry import register


@register("gls")
@keras.saving.register_keras_serializable(package="keras_mtl")
class GLS(Weighting):
    """Geometric loss: the objective is `(prod_k L_k)^(1/K)`, the geometric mean.

    Its gradient is `sum_k G / (K L_k) grad L_k` (G the objective), so the logged
    weight of task k is `G / (K L_k)`: tasks with small losses weigh more. Losses
    are floored at `keras.config.epsilon()` so that the logarithm stays finite.

    Reference: Chennupati, Sistu, Yogamani, Rawashdeh, "MultiNet++: Multi-Stream
    Feature Aggregation and Geometric Loss Strategy for Multi-Task Learning",
    CVPR Workshops 2019.

    Example: `model.compile(optimizer="adam", weighting="gls")`
    """

    def combine(self, losses, training=False, present=None):
        # The geometric mean of the present tasks' losses.
        mask = ops.cast(present_mask(present, self.num_tasks), keras.config.floatx())
        count = ops.maximum(ops.sum(mask), 1.0)
        floored = ops.maximum(losses, keras.config.epsilon())
        objective = ops.exp(ops.sum(mask * ops.log(floored)) / count)
        weights = ops.stop_gradient(mask * objective / (count * floored))
        return objective, weights

    def task_weights(self, losses, training=False):
        return self.combine(ops.stop_gradient(losses), training=training)[1]
