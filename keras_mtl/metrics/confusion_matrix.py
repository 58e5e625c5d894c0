"""A confusion matrix accumulated over an epoch, the state of segmentation metrics."""

import keras
from keras import ops

from keras_mtl.losses.masks import class_map, pixel_weights


class ConfusionMatrixMetric(keras.metrics.Metric):
    """Base of metrics computed from a per-pixel confusion matrix (rows: true
    class, columns: predicted class) summed over every pixel seen since the last
    reset, not averaged per batch.

    Pixels labelled `ignore_label`, or with a label outside `[0, num_classes)`, are
    not counted. Predictions are scores `(B, H, W, num_classes)` (the argmax is the
    predicted class) or class indices `(B, H, W)`. A sample weight, per example or
    per pixel, weighs the counts.

    Args:
        num_classes: number of classes.
        ignore_label: label of unlabelled pixels.
        name, dtype: as for any Keras metric.
    """

    def __init__(self, num_classes, ignore_label=-1, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be an integer >= 1. Received: num_classes={num_classes!r}")
        if int(ignore_label) != ignore_label:
            raise ValueError(f"ignore_label must be an integer. Received: ignore_label={ignore_label!r}")
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        self.confusion = self.add_variable((self.num_classes, self.num_classes), "zeros",
                                           dtype="float32", name="confusion")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = class_map(y_true)
        y_pred = ops.convert_to_tensor(y_pred)
        if len(y_pred.shape) == len(labels.shape) + 1 and y_pred.shape[-1] != 1:
            predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        else:
            predicted = class_map(y_pred)
        c = self.num_classes
        valid = ops.logical_and(ops.not_equal(labels, self.ignore_label),
                                ops.logical_and(labels >= 0, labels < c))
        valid = ops.logical_and(valid, ops.logical_and(predicted >= 0, predicted < c))
        cell = ops.where(valid, labels * c + predicted, 0)
        counts = ops.segment_sum(ops.reshape(pixel_weights(valid, sample_weight), (-1,)),
                                 ops.reshape(cell, (-1,)), num_segments=c * c)
        self.confusion.assign_add(ops.reshape(counts, (c, c)))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "ignore_label": self.ignore_label}
