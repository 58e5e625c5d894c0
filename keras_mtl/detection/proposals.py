"""From RPN outputs to scored boxes."""

from keras import ops

from keras_mtl.detection.box_coding import decode_boxes
from keras_mtl.detection.nms import non_max_suppression


def proposals(anchors, objectness_logits, deltas, image_size, max_output_size=100,
              pre_nms_top_k=1000, iou_threshold=0.7, score_threshold=float("-inf")):
    """Decodes the RPN's outputs into at most `max_output_size` boxes per image.

    The `pre_nms_top_k` highest-scoring anchors are decoded (`decode_boxes`),
    clipped to the image, and thinned by `non_max_suppression` (Ren et al.,
    "Faster R-CNN", NeurIPS 2015, Sec. 3.3).

    Args:
        anchors: `(A, 4)`.
        objectness_logits: `(B, A, 1)` or `(B, A)`.
        deltas: `(B, A, 4)`.
        image_size: `(height, width)` in pixels.
        max_output_size, iou_threshold, score_threshold: as in `non_max_suppression`
            (`score_threshold` on the sigmoid probability).
        pre_nms_top_k: anchors kept before suppression.

    Returns:
        `(boxes, scores, valid)`: `(B, K, 4)`, `(B, K)` object probabilities and the
        `(B, K)` mask of real entries, `K = max_output_size`, by decreasing score.

    Example:

    ```python
    out = model.predict(images)
    boxes, scores, valid = proposals(anchor_boxes, out["objectness"], out["boxes"], (48, 64))
    ```
    """
    anchors = ops.convert_to_tensor(anchors)
    logits = ops.cast(ops.convert_to_tensor(objectness_logits), anchors.dtype)
    if len(logits.shape) == 3:
        logits = logits[..., 0]
    k = min(int(pre_nms_top_k), logits.shape[-1])
    top_logits, top = ops.top_k(logits, k, sorted=True)
    boxes = decode_boxes(ops.take(anchors, top, axis=0),
                         ops.take_along_axis(ops.convert_to_tensor(deltas), top[..., None], axis=1))
    height, width = (float(s) for s in image_size)
    limit = ops.convert_to_tensor([width, height, width, height], boxes.dtype)
    boxes = ops.minimum(ops.maximum(boxes, 0.0), limit)
    scores = ops.sigmoid(top_logits)
    kept, valid = non_max_suppression(boxes, scores, max_output_size, iou_threshold, score_threshold)
    boxes = ops.take_along_axis(boxes, kept[..., None], axis=1)
    scores = ops.where(valid, ops.take_along_axis(scores, kept, axis=1), 0.0)
    return ops.where(valid[..., None], boxes, 0.0), scores, valid
