"""Labels and sample weights of the two RPN tasks for a batch of ground-truth boxes."""

from keras import ops

from keras_mtl.detection.box_coding import encode_boxes
from keras_mtl.detection.matching import POSITIVE, match_anchors
from keras_mtl.detection.sampling import sample_anchors


def rpn_targets(anchors, boxes, box_mask=None, positive_threshold=0.7, negative_threshold=0.3,
                num_samples=256, positive_fraction=0.5, seed=None,
                objectness="objectness", regression="boxes"):
    """Faster R-CNN's region proposal targets as labels and per-task sample weights.

    Matches `anchors` to the boxes (`match_anchors`), draws each image's minibatch
    of anchors (`sample_anchors`) and encodes the matched boxes (`encode_boxes`).
    Given to `fit`, the sample weights make both tasks ordinary masked keras_mtl
    tasks: the objectness loss averages over the drawn anchors, the box loss over
    the drawn positives (Ren et al., NeurIPS 2015, Eq. 1, with the weighting method
    in the place of the hand-set `lambda`).

    Args:
        anchors: `(A, 4)`.
        boxes, box_mask: `(B, M, 4)` and `(B, M)`, as in `match_anchors`.
        positive_threshold, negative_threshold: as in `match_anchors`.
        num_samples, positive_fraction, seed: as in `sample_anchors`.
        objectness, regression: the two tasks' names.

    Returns:
        `(labels, sample_weights)`: dicts keyed by the task names; labels
        `(B, A, 1)` 0/1 objectness and `(B, A, 4)` box offsets (0 where the anchor is
        not positive), weights `(B, A)`.

    Example:

    ```python
    y, w = rpn_targets(anchors((6, 8), 8), boxes, box_mask, seed=0)
    model.fit(images, y, sample_weight=w)
    ```
    """
    anchors = ops.convert_to_tensor(anchors)
    labels, matched = match_anchors(anchors, boxes, box_mask, positive_threshold, negative_threshold)
    classification_weight, regression_weight = sample_anchors(
        labels, num_samples, positive_fraction, seed)
    positive = labels == POSITIVE
    matched_boxes = ops.take_along_axis(ops.cast(boxes, anchors.dtype), matched[..., None], axis=1)
    # Anchors that are not positive match themselves: zero offsets, never NaN (a
    # padding box has no size), and unused.
    matched_boxes = ops.where(positive[..., None], matched_boxes, anchors[None])
    deltas = encode_boxes(anchors[None], matched_boxes)
    return ({objectness: ops.cast(positive, anchors.dtype)[..., None], regression: deltas},
            {objectness: classification_weight, regression: regression_weight})
