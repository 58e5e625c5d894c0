"""Greedy non-maximum suppression."""

from keras import ops

from keras_mtl.detection._ops import first_argmax
from keras_mtl.detection.iou import iou


def non_max_suppression(boxes, scores, max_output_size, iou_threshold=0.7,
                        score_threshold=float("-inf")):
    """Greedy non-maximum suppression per image.

    Repeatedly keeps the highest-scoring remaining box (the lowest index among
    equal scores) and drops every remaining box whose IoU with it is above
    `iou_threshold`, until `max_output_size` boxes are kept or none remains (the
    inference step of Faster R-CNN, Ren et al., NeurIPS 2015, Sec. 3.3). Boxes
    scoring below `score_threshold`, and NaN scores, are never kept.

    Args:
        boxes: `(B, N, 4)` boxes `(x1, y1, x2, y2)`.
        scores: `(B, N)`.
        max_output_size: boxes to keep per image (>= 1).
        iou_threshold: in [0, 1].
        score_threshold: the lowest score kept.

    Returns:
        `(indices, valid)`: `(B, max_output_size)` int32 indices into each image's
        boxes, in the order kept, and a bool mask of the kept entries (indices past
        the last kept box are 0).

    Example:

    ```python
    indices, valid = non_max_suppression(boxes, scores, max_output_size=100, iou_threshold=0.5)
    ```
    """
    if int(max_output_size) != max_output_size or max_output_size < 1:
        raise ValueError(f"max_output_size must be an integer >= 1. Received: max_output_size={max_output_size!r}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1]. Received: iou_threshold={iou_threshold!r}")
    boxes = ops.convert_to_tensor(boxes)
    scores = ops.cast(ops.convert_to_tensor(scores), boxes.dtype)
    size = int(max_output_size)
    slots = ops.arange(size, dtype="int32")

    def step(k, state):
        alive, indices, valid = state
        chosen = first_argmax(scores, where=alive)  # (B,)
        any_alive = ops.any(alive, axis=-1)
        here = slots == k
        indices = ops.where(here, ops.where(any_alive, chosen, 0)[:, None], indices)
        valid = ops.logical_or(valid, ops.logical_and(here, any_alive[:, None]))
        # One row of IoUs per step: K rows cost far less than the N x N matrix.
        row = iou(ops.take_along_axis(boxes, chosen[:, None, None], axis=1), boxes)[:, 0, :]
        keep = ops.logical_and(row <= iou_threshold,
                               ops.arange(ops.shape(scores)[-1], dtype="int32") != chosen[:, None])
        return ops.logical_and(alive, keep), indices, valid

    alive = scores >= score_threshold
    batch = ops.shape(scores)[0]
    _, indices, valid = ops.fori_loop(
        0, size, step, (alive, ops.zeros((batch, size), "int32"), ops.zeros((batch, size), "bool")))
    return indices, valid
