"""Box regression targets in Faster R-CNN's (t_x, t_y, t_w, t_h) parametrisation."""

import math

from keras import ops

# exp(t_w) is bounded by 1000 / 16, as in the reference implementations, so that a
# wild prediction decodes to a large box rather than to inf.
DEFAULT_MAX_LOG_SCALE = math.log(1000.0 / 16.0)


def _centre_size(boxes):
    width = boxes[..., 2] - boxes[..., 0]
    height = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * width, boxes[..., 1] + 0.5 * height, width, height


def encode_boxes(anchors, boxes):
    """The offsets `(t_x, t_y, t_w, t_h)` that take `anchors` to `boxes`.

    `t_x = (x - x_a) / w_a`, `t_y = (y - y_a) / h_a`, `t_w = log(w / w_a)`,
    `t_h = log(h / h_a)`, with `(x, y)` a box's centre and `(w, h)` its size (Ren et
    al., "Faster R-CNN", NeurIPS 2015, Eq. 2; Girshick et al., R-CNN, Appendix C).
    Boxes must have positive width and height (else `t_w` or `t_h` is not finite).

    Args:
        anchors: `(..., 4)` boxes `(x1, y1, x2, y2)`.
        boxes: `(..., 4)`, broadcast against `anchors`.

    Example:

    ```python
    deltas = encode_boxes(anchors, matched_boxes)  # (..., 4)
    ```
    """
    anchors = ops.convert_to_tensor(anchors)
    boxes = ops.cast(ops.convert_to_tensor(boxes), anchors.dtype)
    xa, ya, wa, ha = _centre_size(anchors)
    x, y, w, h = _centre_size(boxes)
    return ops.stack([(x - xa) / wa, (y - ya) / ha, ops.log(w / wa), ops.log(h / ha)], axis=-1)


def decode_boxes(anchors, deltas, max_log_scale=DEFAULT_MAX_LOG_SCALE):
    """The boxes `(x1, y1, x2, y2)` that `deltas` `(t_x, t_y, t_w, t_h)` make of
    `anchors`: the inverse of `encode_boxes`, with `t_w` and `t_h` clipped at
    `max_log_scale`.

    Example:

    ```python
    boxes = decode_boxes(anchors, model.predict(images)["boxes"])
    ```
    """
    anchors = ops.convert_to_tensor(anchors)
    deltas = ops.cast(ops.convert_to_tensor(deltas), anchors.dtype)
    xa, ya, wa, ha = _centre_size(anchors)
    x = deltas[..., 0] * wa + xa
    y = deltas[..., 1] * ha + ya
    half_w = 0.5 * ops.exp(ops.minimum(deltas[..., 2], max_log_scale)) * wa
    half_h = 0.5 * ops.exp(ops.minimum(deltas[..., 3], max_log_scale)) * ha
    return ops.stack([x - half_w, y - half_h, x + half_w, y + half_h], axis=-1)
