"""Geometric Loss Strategy (GLS)."""

import keras
from keras import ops

from keras_mtl.weighting.base import Weighting
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

    def combine(self, losses, training=False):
        floored = ops.maximum(losses, keras.config.epsilon())
        objective = ops.exp(ops.mean(ops.log(floored)))
        weights = ops.stop_gradient(objective / (self.num_tasks * floored))
        return objective, weights

    def task_weights(self, losses, training=False):
        return self.combine(ops.stop_gradient(losses), training=training)[1]
