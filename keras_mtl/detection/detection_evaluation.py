"""Mean average precision of a region proposal network after every epoch."""

import keras
import numpy as np

from keras_mtl.detection.average_precision import MeanAveragePrecision
from keras_mtl.detection.proposals import proposals


class DetectionEvaluation(keras.callbacks.Callback):
    """Adds `<prefix>map` and `<prefix>map50` to the logs after every epoch.

    Predicts every batch of `data`, turns the RPN's outputs into boxes
    (`proposals`, one class: object) and accumulates them in a
    `MeanAveragePrecision` over the whole of `data`, so the logs, `History` and
    later callbacks (early stopping, checkpoints) see the epoch's mAP. Place it
    before the callbacks that read these logs.

    Args:
        data: an iterable of `(images, boxes, box_mask)` batches (numpy arrays or
            tensors; boxes `(B, M, 4)`), read again every epoch.
        anchors: the `(A, 4)` anchors of the model's outputs.
        image_size: `(height, width)`.
        objectness, regression: the two tasks' names.
        prefix: the log names' prefix.
        **proposal_options: passed to `proposals` (`max_output_size`, ...).

    Example:

    ```python
    evaluation = DetectionEvaluation([(images, boxes, mask)], anchor_boxes, (48, 64))
    model.fit(x, y, sample_weight=w, callbacks=[evaluation])  # logs "val_map", "val_map50"
    ```
    """

    def __init__(self, data, anchors, image_size, objectness="objectness", regression="boxes",
                 prefix="val_", **proposal_options):
        super().__init__()
        self.data, self.anchors, self.image_size = data, anchors, tuple(image_size)
        self.objectness, self.regression, self.prefix = objectness, regression, prefix
        self.proposal_options = proposal_options

    def evaluate(self):
        """`{"map": ..., "map50": ...}` of the model on `data`."""
        metric = MeanAveragePrecision()
        for images, boxes, box_mask in self.data:
            out = self.model.predict_on_batch(images)
            found, scores, valid = proposals(self.anchors, out[self.objectness], out[self.regression],
                                             self.image_size, **self.proposal_options)
            box_mask = np.asarray(box_mask)
            metric.update_state(boxes, np.zeros(box_mask.shape, int), box_mask, found, scores,
                                np.zeros(np.shape(valid), int), valid)
        return metric.result()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update({self.prefix + name: value for name, value in self.evaluate().items()})
