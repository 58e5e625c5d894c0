"""Smooth L1 loss for box regression."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_mtl")
class SmoothL1(keras.losses.Loss):
    """Smooth L1 summed over the last axis: per coordinate `0.5 x^2 / beta` where
    `|x| < beta`, else `|x| - 0.5 beta`, with `x` the prediction minus the label.

    With `beta = 1` this is Fast R-CNN's loss (Girshick, ICCV 2015, Eq. 3), the box
    loss of Faster R-CNN (Ren et al., NeurIPS 2015, Eq. 1); `beta = 0` is L1.
    Predictions and labels `(..., 4)` give one loss per box, `(...)`, so a per-box
    sample weight selects the positive anchors.

    Example:

    ```python
    keras_mtl.Task("boxes", head=..., loss=SmoothL1())
    ```
    """

    def __init__(self, beta=1.0, reduction="sum_over_batch_size", name="smooth_l1", dtype=None):
        if not (isinstance(beta, (int, float)) and 0.0 <= beta < float("inf")):
            raise ValueError(f"SmoothL1: beta must be a finite number >= 0. Received: beta={beta!r}")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.beta = float(beta)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        difference = ops.abs(y_pred - ops.cast(y_true, y_pred.dtype))
        if self.beta == 0.0:
            return ops.sum(difference, axis=-1)
        # The quadratic branch sees min(|x|, beta), so it stays finite for huge |x|.
        small = ops.minimum(difference, self.beta)
        loss = ops.where(difference < self.beta, 0.5 * ops.square(small) / self.beta,
                         difference - 0.5 * self.beta)
        return ops.sum(loss, axis=-1)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}
