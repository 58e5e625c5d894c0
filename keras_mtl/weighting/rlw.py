"""Random Loss Weighting (RLW)."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_seed
from keras_mtl.weighting.base import Weighting, present_mask
from keras_mtl.weighting.registry import register


@register("rlw")
@keras.saving.register_keras_serializable(package="keras_mtl")
class RLW(Weighting):
    """Random loss weights: `softmax(z)`, `z ~ N(0, I)` drawn afresh each training
    step (they sum to 1). Outside training the weights are their mean, 1/K.

    The draws come from a `keras.random.SeedGenerator` whose state is a variable of
    this layer: reproducible with `seed`, restored from `.keras` files, and usable
    in a compiled step.

    Reference: Lin, Ye, Xu, Shi, Zhang, "Reasonable Effectiveness of Random
    Weighting: A Litmus Test for Multi-Task Learning", TMLR 2022.

    Args:
        seed: an int for reproducible draws, or None.

    Example: `model.compile(optimizer="adam", weighting=RLW(seed=1))`
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def task_weights(self, losses, training=False, present=None):
        mask = present_mask(present, self.num_tasks)
        if not training:
            return ops.cast(mask, losses.dtype) / ops.sum(ops.cast(mask, losses.dtype))
        draws = keras.random.normal((self.num_tasks,), seed=self.seed_generator)
        # The softmax over the present tasks; every step draws K numbers.
        return ops.cast(ops.softmax(ops.where(mask, draws, -float("inf"))), losses.dtype)

    def combine(self, losses, training=False, present=None):
        weights = self.task_weights(losses, training=training, present=present)
        return ops.sum(weights * losses), weights

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config
