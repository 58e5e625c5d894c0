"""Intersection over union of axis-aligned boxes."""

from keras import ops

from keras_mtl.detection._ops import box_area


def iou(boxes1, boxes2):
    """Pairwise intersection over union of two sets of boxes.

    Boxes are `(x1, y1, x2, y2)` corners in pixels, with `x2 - x1` the width (no
    `+ 1`, as in pycocotools). An empty box (zero or negative width or height) has
    IoU 0 with every box, itself included.

    Args:
        boxes1: `(..., N, 4)`.
        boxes2: `(..., M, 4)`; leading axes broadcast against `boxes1`'s.

    Returns:
        `(..., N, M)`: `area(a & b) / area(a | b)`.

    Example:

    ```python
    iou([[0., 0., 2., 2.]], [[1., 0., 3., 2.], [5., 5., 6., 6.]])  # [[1/3, 0]]
    ```
    """
    boxes1 = ops.convert_to_tensor(boxes1)
    boxes2 = ops.cast(ops.convert_to_tensor(boxes2), boxes1.dtype)
    a = ops.expand_dims(boxes1, -2)
    b = ops.expand_dims(boxes2, -3)
    low = ops.maximum(a[..., :2], b[..., :2])
    high = ops.minimum(a[..., 2:], b[..., 2:])
    size = ops.maximum(high - low, 0.0)
    intersection = size[..., 0] * size[..., 1]
    union = box_area(a) + box_area(b) - intersection
    return ops.divide_no_nan(intersection, union)
