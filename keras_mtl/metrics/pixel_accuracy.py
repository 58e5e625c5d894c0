"""Pixel accuracy for semantic segmentation."""

import keras
from keras import ops

from keras_mtl.metrics.confusion_matrix import ConfusionMatrixMetric


@keras.saving.register_keras_serializable(package="keras_mtl")
class PixelAccuracy(ConfusionMatrixMetric):
    """The fraction of labelled pixels whose predicted class is right, over all
    pixels seen in the epoch (the trace of the confusion matrix over its sum).

    Args:
        num_classes: number of classes.
        ignore_label: label of unlabelled pixels (not counted).
        name, dtype: as for any Keras metric.
    """

    def __init__(self, num_classes, ignore_label=-1, name="pixel_accuracy", dtype=None):
        super().__init__(num_classes, ignore_label=ignore_label, name=name, dtype=dtype)

    def result(self):
        return ops.divide_no_nan(ops.trace(self.confusion), ops.sum(self.confusion))
