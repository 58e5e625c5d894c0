"""Mean average precision of a region proposal network after every epoch."""

import keras
import numpy as np

from keras_mtl.detection.average_precision import MeanAveragePrecision


class DetectionEvaluation(keras.callbacks.Callback):
    """Adds `<prefix>map` and `<prefix>map50` to the logs after every epoch.

    Predicts every batch of `data` through the model followed by `layer` (a
    `ProposalLayer`, compiled with the model's `predict`) and accumulates the boxes
    (one class: object) in a `MeanAveragePrecision` over the whole of `data`, so the
    logs, `History` and later callbacks (early stopping, checkpoints) see the
    epoch's mAP. Place it before the callbacks that read these logs.

    Args:
        data: an iterable of `(images, boxes, box_mask)` batches (boxes
            `(B, M, 4)`), read again every epoch.
        layer: a `ProposalLayer` matching the model's anchors.
        objectness, regression: the two tasks' names.
        prefix: the log names' prefix.

    Example:

    ```python
    layer = ProposalLayer((6, 8), 8, image_size=(48, 64))
    model.fit(x, y, sample_weight=w, callbacks=[DetectionEvaluation([(x, boxes, mask)], layer)])
    ```
    """

    def __init__(self, data, layer, objectness="objectness", regression="boxes", prefix="val_"):
        super().__init__()
        self.data, self.layer, self.prefix = data, layer, prefix
        self.objectness, self.regression = objectness, regression
        self._detector = None

    def detector(self):
        """The model followed by the layer (built once per model)."""
        if self._detector is None or self._detector[0] is not self.model:
            outputs = dict(zip(self.model.output_names, keras.tree.flatten(self.model.outputs)))
            self._detector = (self.model, keras.Model(
                self.model.inputs, self.layer(outputs[self.objectness], outputs[self.regression])))
        return self._detector[1]

    def evaluate(self):
        """`{"map": ..., "map50": ...}` of the model on `data`."""
        metric = MeanAveragePrecision()
        for images, boxes, box_mask in self.data:
            found, scores, valid = self.detector().predict_on_batch(images)
            box_mask = np.asarray(box_mask)
            metric.update_state(boxes, np.zeros(box_mask.shape, int), box_mask, found, scores,
                                np.zeros(np.shape(valid), int), valid)
        return metric.result()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update({self.prefix + name: value for name, value in self.evaluate().items()})
