"""IMTL-L: learned loss scales that make the scaled task losses equal."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float
from keras_mtl.weighting.base import Weighting, present_mask
from keras_mtl.weighting.registry import register


@register("imtl_l")
@keras.saving.register_keras_serializable(package="keras_mtl")
class IMTLL(Weighting):
    """IMTL-L, the loss part of Impartial Multi-Task Learning: objective
    `sum_k exp(s_k) L_k - s_k`.

    The scales `s_k` are learned by the `weighting_optimizer` on the same objective:
    its gradient in `s_k`, `exp(s_k) L_k - 1`, is 0 where the scaled loss
    `exp(s_k) L_k` is 1 for every task, so the network sees losses of equal size
    (the paper's point: impartial to the losses' scales). The logged weight of task k
    is `exp(s_k)`. An absent task's term is left out and its scale is not updated.
    The scales are Keras weights: saved in `.keras` files and restored on resume.

    Reference: Liu, Li, Kuang, Xue, Chen, Yang, Liao, Zhang, "Towards Impartial
    Multi-task Learning", ICLR 2021 (section 3.2).

    Args:
        initial_log_scale: the initial value of every `s_k` (the paper's 0: the sum of
            the losses).

    Example:

    ```python
    model.compile(optimizer="adam", weighting="imtl_l",
                  weighting_optimizer=keras.optimizers.Adam(1e-2))
    ```
    """

    def __init__(self, initial_log_scale=0.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_log_scale = check_float("initial_log_scale", initial_log_scale)

    def build(self, input_shape):
        super().build(input_shape)
        self.log_scales = self.add_weight(
            shape=(self.num_tasks,), name="log_scales",
            initializer=keras.initializers.Constant(self.initial_log_scale))

    def task_weights(self, losses, training=False):
        return ops.exp(ops.convert_to_tensor(self.log_scales))

    def combine(self, losses, training=False, present=None):
        weights = self.task_weights(losses, training=training)
        mask = ops.cast(present_mask(present, self.num_tasks), losses.dtype)
        objective = ops.sum(mask * (weights * losses - self.log_scales))
        return objective, weights

    def get_config(self):
        config = super().get_config()
        config["initial_log_scale"] = self.initial_log_scale
        return config
