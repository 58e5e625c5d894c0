"""Matching anchors to ground-truth boxes (Faster R-CNN, Sec. 3.1.2)."""

from keras import ops

from keras_mtl.detection._ops import first_argmax
from keras_mtl.detection.iou import iou

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1


def match_anchors(anchors, boxes, box_mask=None, positive_threshold=0.7, negative_threshold=0.3):
    """Labels each anchor positive, negative or ignored, and the box it matches.

    As in Faster R-CNN (Ren et al., NeurIPS 2015, Sec. 3.1.2): an anchor is
    positive when its IoU with some box is >= `positive_threshold`, or when it has
    the highest IoU of all anchors with some box (every anchor tied at that highest
    IoU, and only when that IoU is > 0: a box that overlaps no anchor makes no
    positive); it is negative when it is not positive and its IoU with every box is
    < `negative_threshold`; otherwise it is ignored. An anchor matches the box of
    its highest IoU (the lowest index among ties). Padding boxes (`box_mask` False)
    match nothing, so an image with no box has only negative anchors.

    Args:
        anchors: `(A, 4)` boxes `(x1, y1, x2, y2)`.
        boxes: `(B, M, 4)` ground-truth boxes per image, padded to `M >= 1`.
        box_mask: `(B, M)`, True for real boxes; `None`: all real.
        positive_threshold, negative_threshold: IoU thresholds,
            `0 <= negative_threshold <= positive_threshold <= 1`.

    Returns:
        `(labels, matched)`: `(B, A)` int32 labels (`POSITIVE` 1, `NEGATIVE` 0,
        `IGNORED` -1) and `(B, A)` int32 indices into each image's boxes (0 for an
        image without boxes).

    Example:

    ```python
    labels, matched = match_anchors(anchors((6, 8), 8), boxes, box_mask)
    ```
    """
    if not 0.0 <= negative_threshold <= positive_threshold <= 1.0:
        raise ValueError(
            "match_anchors needs 0 <= negative_threshold <= positive_threshold <= 1. Received: "
            f"negative_threshold={negative_threshold!r}, positive_threshold={positive_threshold!r}")
    boxes = ops.convert_to_tensor(boxes)
    if len(boxes.shape) != 3 or boxes.shape[-1] != 4 or boxes.shape[1] == 0:
        raise ValueError(f"boxes must have shape (B, M, 4) with M >= 1. Received: shape {boxes.shape}")
    if box_mask is None:
        box_mask = ops.ones(ops.shape(boxes)[:2], dtype="bool")
    box_mask = ops.expand_dims(ops.cast(box_mask, "bool"), 1)  # (B, 1, M)
    overlaps = ops.where(box_mask, iou(anchors, boxes), -1.0)  # (B, A, M)
    best_of_anchor = ops.max(overlaps, axis=-1)
    best_of_box = ops.max(overlaps, axis=1, keepdims=True)
    is_best = ops.any(ops.logical_and(overlaps == best_of_box, best_of_box > 0), axis=-1)
    positive = ops.logical_or(best_of_anchor >= positive_threshold, is_best)
    negative = ops.logical_and(best_of_anchor < negative_threshold, ops.logical_not(positive))
    labels = ops.where(positive, POSITIVE, ops.where(negative, NEGATIVE, IGNORED))
    return ops.cast(labels, "int32"), first_argmax(overlaps, where=box_mask)
