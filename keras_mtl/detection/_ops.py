"""Small `keras.ops` helpers shared by the detection functions."""

from keras import ops


def first_argmax(values, where=None):
    """The lowest index of the maximum along the last axis (int32): a tie-break
    that every backend keeps, which `ops.argmax` does not promise. With `where`,
    only the entries where it is True compete (the result is 0 when none does)."""
    if where is None:
        where = ops.ones_like(values, dtype="bool")
    low = ops.full_like(values, float("-inf"))
    best = ops.max(ops.where(where, values, low), axis=-1, keepdims=True)
    size = values.shape[-1]
    candidates = ops.logical_and(where, values == best)
    first = ops.min(ops.where(candidates, ops.arange(size, dtype="int32"), size), axis=-1)
    return ops.where(first == size, 0, first)


def box_area(boxes):
    """Areas of `(..., 4)` boxes `(x1, y1, x2, y2)`; 0 for an empty or inverted box."""
    return (ops.maximum(boxes[..., 2] - boxes[..., 0], 0.0)
            * ops.maximum(boxes[..., 3] - boxes[..., 1], 0.0))
