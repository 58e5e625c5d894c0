"""Equal weighting: every task has weight 1."""

import keras
from keras import ops

from keras_mtl.weighting.base import Weighting
from keras_mtl.weighting.registry import register


@register("equal")
@keras.saving.register_keras_serializable(package="keras_mtl")
class Equal(Weighting):
    """Equal weights: the objective is the plain sum of the task losses.

    Example: `model.compile(optimizer="adam", weighting="equal")`
    """

    def task_weights(self, losses, training=False):
        return ops.ones_like(losses)
