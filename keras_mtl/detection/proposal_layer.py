"""`proposals` as a Keras layer, so that it runs compiled inside a model."""

import keras

from keras_mtl.detection.anchors import anchors
from keras_mtl.detection.proposals import proposals


@keras.saving.register_keras_serializable(package="keras_mtl")
class ProposalLayer(keras.layers.Layer):
    """Turns an RPN's `(objectness, boxes)` outputs into `(boxes, scores, valid)`.

    The layer form of `proposals` on the anchors of `anchors(feature_shape, stride,
    scales, aspect_ratios)`: appended to a model it runs in the model's compiled
    `predict` on every backend, and it saves with the model.

    Args:
        feature_shape, stride, scales, aspect_ratios: as in `anchors`.
        image_size: `(height, width)`.
        max_output_size, pre_nms_top_k, iou_threshold, score_threshold: as in
            `proposals`.

    Example:

    ```python
    layer = ProposalLayer((6, 8), 8, image_size=(48, 64))
    out = model.outputs
    detector = keras.Model(model.inputs, layer(out[1], out[0]))  # objectness, boxes
    ```
    """

    def __init__(self, feature_shape, stride, scales=(32.0, 64.0, 128.0), aspect_ratios=(0.5, 1.0, 2.0),
                 image_size=None, max_output_size=100, pre_nms_top_k=1000, iou_threshold=0.7,
                 score_threshold=float("-inf"), **kwargs):
        super().__init__(**kwargs)
        if image_size is None or len(tuple(image_size)) != 2:
            raise ValueError(f"ProposalLayer: image_size must be (height, width). Received: image_size={image_size!r}")
        self.feature_shape = tuple(int(d) for d in feature_shape)
        self.stride = float(stride)
        self.scales = tuple(float(s) for s in scales)
        self.aspect_ratios = tuple(float(r) for r in aspect_ratios)
        self.image_size = tuple(int(d) for d in image_size)
        self.max_output_size = int(max_output_size)
        self.pre_nms_top_k = int(pre_nms_top_k)
        self.iou_threshold = float(iou_threshold)
        self.score_threshold = float(score_threshold)
        self.anchors = anchors(self.feature_shape, self.stride, self.scales, self.aspect_ratios)

    def call(self, objectness_logits, deltas):
        return proposals(self.anchors, objectness_logits, deltas, self.image_size, self.max_output_size,
                         self.pre_nms_top_k, self.iou_threshold, self.score_threshold)

    def compute_output_spec(self, objectness_logits, deltas):
        batch, k = objectness_logits.shape[0], self.max_output_size
        dtype = keras.backend.standardize_dtype(self.anchors.dtype)
        return (keras.KerasTensor((batch, k, 4), dtype=dtype),
                keras.KerasTensor((batch, k), dtype=dtype),
                keras.KerasTensor((batch, k), dtype="bool"))

    def get_config(self):
        return {**super().get_config(), "feature_shape": self.feature_shape, "stride": self.stride,
                "scales": self.scales, "aspect_ratios": self.aspect_ratios, "image_size": self.image_size,
                "max_output_size": self.max_output_size, "pre_nms_top_k": self.pre_nms_top_k,
                "iou_threshold": self.iou_threshold, "score_threshold": self.score_threshold}
