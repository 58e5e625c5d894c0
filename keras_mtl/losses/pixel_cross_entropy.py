"""Pixel-wise cross-entropy with an ignore label (semantic segmentation)."""

import keras
from keras import ops

from keras_mtl.losses.masks import class_map, per_example_mean


@keras.saving.register_keras_serializable(package="keras_mtl")
class PixelCrossEntropy(keras.losses.Loss):
    """Softmax cross-entropy per pixel, averaged over each image's labelled pixels.

    Pixels labelled `ignore_label` add nothing (NYUv2's unlabelled pixels; Long et
    al., "Fully Convolutional Networks for Semantic Segmentation", CVPR 2015). The
    per-image means are then reduced over the batch by `reduction`.

    Args:
        ignore_label: the label of unlabelled pixels (MTAN's NYUv2 uses -1,
            CityScapes 255).
        from_logits: whether predictions are logits (else probabilities).
        reduction, name, dtype: as for any Keras loss.

    Labels are class indices of shape `(B, H, W)` or `(B, H, W, 1)`; predictions
    `(B, H, W, num_classes)`.

    Example:

    ```python
    loss = PixelCrossEntropy(ignore_label=255)
    value = loss(labels, logits)
    ```
    """

    def __init__(self, ignore_label=-1, from_logits=True, reduction="sum_over_batch_size",
                 name="pixel_cross_entropy", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if int(ignore_label) != ignore_label:
            raise ValueError(f"ignore_label must be an integer. Received: ignore_label={ignore_label!r}")
        self.ignore_label = int(ignore_label)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        labels = class_map(y_true)
        valid = ops.not_equal(labels, self.ignore_label)
        labels = ops.where(valid, labels, 0)
        if self.from_logits:
            log_probs = ops.log_softmax(y_pred, axis=-1)
        else:
            log_probs = ops.log(ops.clip(y_pred, 1e-7, 1.0))
        picked = ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1)
        return per_example_mean(-ops.squeeze(picked, -1), valid)

    def get_config(self):
        return {**super().get_config(), "ignore_label": self.ignore_label,
                "from_logits": self.from_logits}
