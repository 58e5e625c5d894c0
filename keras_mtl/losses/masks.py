"""Valid-pixel masks of dense labels and masked reductions, shared by the dense
losses and metrics.

Conventions: a depth label is invalid where it is not finite or not > 0 (NYUv2 and
Scenes store missing depth as 0); a surface-normal label is invalid where it is not
finite or is the zero vector.
"""

import keras
from keras import ops


def class_map(labels):
    """Class indices `(B, H, W)` int32 from `(B, H, W)` or `(B, H, W, 1)` labels."""
    labels = ops.convert_to_tensor(labels)
    if len(labels.shape) == 4 and labels.shape[-1] == 1:
        labels = ops.squeeze(labels, -1)
    return ops.cast(labels, "int32")


def depth_map(depth, like):
    """Depth labels shaped like the prediction `like`: `(B, H, W)` gains a channel."""
    depth = ops.convert_to_tensor(depth)
    if len(depth.shape) == len(like.shape) - 1:
        depth = ops.expand_dims(depth, -1)
    return ops.cast(depth, like.dtype)


def depth_valid(depth):
    """True where a depth label is finite and > 0."""
    return ops.logical_and(ops.isfinite(depth), depth > 0)


def normals_valid(normals):
    """True (per pixel, last axis reduced) where a normal label is finite and non-zero."""
    finite = ops.all(ops.isfinite(normals), axis=-1)
    safe = ops.where(ops.isfinite(normals), normals, 0.0)
    return ops.logical_and(finite, ops.sum(ops.square(safe), axis=-1) > 0)


def unit_vectors(vectors, epsilon=1e-12):
    """L2-normalises the last axis (zero vectors stay zero)."""
    norm = ops.sqrt(ops.maximum(ops.sum(ops.square(vectors), axis=-1, keepdims=True), epsilon))
    return vectors / norm


def per_example_mean(values, mask):
    """Mean of `values` over each example's `mask`ed entries, shape `(B,)`; 0 for an
    example with no valid entry. `values` must be finite where `mask` is False
    (a `where` after a NaN would still poison the gradient)."""
    mask = ops.cast(mask, values.dtype)
    axes = tuple(range(1, len(values.shape)))
    return ops.divide_no_nan(ops.sum(values * mask, axis=axes), ops.sum(mask, axis=axes))


def pixel_weights(mask, sample_weight=None):
    """Float weights of the pixels: the validity `mask` times the sample weight,
    which may be per example `(B,)` or per pixel (the mask's shape)."""
    weights = ops.cast(mask, keras.config.floatx())
    if sample_weight is None:
        return weights
    sample_weight = ops.cast(ops.convert_to_tensor(sample_weight), keras.config.floatx())
    if len(sample_weight.shape) == len(weights.shape) + 1 and sample_weight.shape[-1] == 1:
        sample_weight = ops.squeeze(sample_weight, -1)
    while len(sample_weight.shape) < len(weights.shape):
        sample_weight = ops.expand_dims(sample_weight, -1)
    return weights * sample_weight
