"""Anchors: reference boxes at every feature-map cell (Faster R-CNN, Sec. 3.1.1)."""

import math

from keras import ops


def anchors(feature_shape, stride, scales=(32.0, 64.0, 128.0), aspect_ratios=(0.5, 1.0, 2.0),
            dtype="float32"):
    """The anchors of a feature map, `(H * W * A, 4)` boxes `(x1, y1, x2, y2)`.

    Each cell `(i, j)` of an `H x W` feature map whose cells are `stride` pixels
    apart holds `A = len(aspect_ratios) * len(scales)` anchors centred on
    `((j + 0.5) stride, (i + 0.5) stride)`: for an aspect ratio `r = height / width`
    and a scale `s`, width `s / sqrt(r)` and height `s sqrt(r)`, so area `s^2`
    (Ren et al., "Faster R-CNN", NeurIPS 2015, Sec. 3.1.1; the paper uses scales
    128, 256, 512 and ratios 1:2, 1:1, 2:1 on a stride-16 map). Anchors are ordered
    by row, column, aspect ratio, then scale: the order of a head's
    `(B, H, W, A * k)` output reshaped to `(B, H * W * A, k)`. Anchors may cross
    the image border.

    Args:
        feature_shape: `(H, W)` of the feature map.
        stride: pixels between neighbouring cells (> 0).
        scales: anchor sizes in pixels (square roots of the areas; each > 0).
        aspect_ratios: `height / width` ratios (each > 0).
        dtype: the anchors' dtype.

    Example:

    ```python
    boxes = anchors((6, 8), stride=8, scales=(16, 32), aspect_ratios=(0.5, 1, 2))  # (288, 4)
    ```
    """
    height, width = (int(d) for d in feature_shape)
    if height < 1 or width < 1 or len(tuple(feature_shape)) != 2:
        raise ValueError(f"feature_shape must be (H, W) with H, W >= 1. Received: "
                         f"feature_shape={feature_shape!r}")
    for arg, values in (("stride", [stride]), ("scales", scales), ("aspect_ratios", aspect_ratios)):
        values = list(values)
        if not values or not all(math.isfinite(float(v)) and float(v) > 0 for v in values):
            raise ValueError(f"{arg} must be finite and > 0. Received: {arg}={values!r}")
    half = [[0.5 * s / math.sqrt(r), 0.5 * s * math.sqrt(r)] for r in aspect_ratios for s in scales]
    half = ops.convert_to_tensor(half, dtype=dtype)  # (A, 2): half width, half height
    x = (ops.arange(width, dtype=dtype) + 0.5) * stride
    y = (ops.arange(height, dtype=dtype) + 0.5) * stride
    centre = ops.stack(ops.meshgrid(x, y, indexing="xy"), axis=-1)  # (H, W, 2) of (x, y)
    centre = ops.reshape(centre, (height, width, 1, 2))
    boxes = ops.concatenate([centre - half, centre + half], axis=-1)
    return ops.reshape(boxes, (-1, 4))
