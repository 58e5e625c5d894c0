"""Mean intersection over union for semantic segmentation."""

import keras
from keras import ops

from keras_mtl.metrics.confusion_matrix import ConfusionMatrixMetric


@keras.saving.register_keras_serializable(package="keras_mtl")
class MeanIoU(ConfusionMatrixMetric):
    """Mean over classes of `TP / (TP + FP + FN)`, from the confusion matrix of all
    pixels seen in the epoch (Everingham et al., "The PASCAL Visual Object Classes
    Challenge", IJCV 2010). Classes absent from both labels and predictions (union
    0) are left out of the mean.

    Args:
        num_classes: number of classes.
        ignore_label: label of unlabelled pixels (not counted).
        name, dtype: as for any Keras metric.

    Example:

    ```python
    metrics=[MeanIoU(num_classes=6), PixelAccuracy(num_classes=6)]
    ```
    """

    def __init__(self, num_classes, ignore_label=-1, name="miou", dtype=None):
        super().__init__(num_classes, ignore_label=ignore_label, name=name, dtype=dtype)

    def result(self):
        true_positive = ops.diagonal(self.confusion)
        union = ops.sum(self.confusion, 0) + ops.sum(self.confusion, 1) - true_positive
        present = ops.cast(union > 0, "float32")
        iou = ops.divide_no_nan(true_positive, union)
        return ops.divide_no_nan(ops.sum(iou * present), ops.sum(present))
