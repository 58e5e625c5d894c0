"""Pieces of the train step that every backend's trainer shares (`keras.ops` only):
the combination of per-task gradients by a weighting method (given per variable, or
flat and split back into tensors), and the finiteness of a step."""

import keras
import numpy as np
from keras import ops

from keras_mtl._distribute import replica_sum
from keras_mtl.weighting.base import apply_weights, gramian


def unique(variables):
    """`variables` without repeats (by identity), in their first order."""
    seen, result = set(), []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            result.append(v)
    return result


def unflatten(vector, like):
    """Splits a flat vector into pieces shaped like the variables or tensors `like`."""
    parts, offset = [], 0
    for t in like:
        static = None not in tuple(t.shape)
        shape = tuple(t.shape) if static else ops.shape(t)
        size = int(np.prod(t.shape)) if static else ops.size(t)
        parts.append(ops.reshape(vector[offset:offset + size], shape))
        offset = offset + size
    return parts


def _row_like(vector, block):
    """A flat `vector` shaped like one row of `block`."""
    if len(block.shape) == 2:
        return vector
    static = None not in tuple(block.shape)
    return ops.reshape(vector, tuple(block.shape[1:]) if static else ops.shape(block)[1:])


def combine_blocks(method, blocks, losses, present, sum_gramian=None):
    """`(combined, weights, residual)` of a gradient method for per-task gradients in
    blocks of one replica holding the whole batch: `blocks[i]` holds the K tasks'
    gradients of one tensor (shape (K,) + its shape), `combined[i]` the combined
    gradient of that tensor. When the method needs only the Gramian, that is the sum
    of the blocks' Gramians and the weights apply to each block, so the K x P matrix
    of all blocks is never built; else `combine_gradients` gets that matrix (residual
    None: the method reports none). `sum_gramian`, when given, turns these blocks'
    Gramian into the global batch's (replicas whose rows each span part of it); the
    weights then apply to these blocks."""
    rows = [b if len(b.shape) == 2 else ops.reshape(b, (b.shape[0], -1)) for b in blocks]
    if method.uses_gramian:
        rows = [ops.cast(r, keras.config.floatx()) for r in rows]
        gram = gramian(rows[0])
        for r in rows[1:]:
            gram = gram + gramian(r)
        if sum_gramian is not None:
            gram = sum_gramian(gram)
        weights, residual = method.solve_gramian(gram, losses, present)
        combined = [_row_like(ops.cast(apply_weights(weights, r), b.dtype), b)
                    for r, b in zip(rows, blocks)]
        return combined, weights, residual
    matrix = rows[0] if len(rows) == 1 else ops.concatenate(rows, axis=1)
    combined, weights = method.combine_gradients(matrix, losses, present)
    if len(blocks) == 1:
        return [_row_like(combined, blocks[0])], weights, None
    return unflatten(combined, [b[0] for b in blocks]), weights, None


def combine_loss_scaled(method, blocks, losses, present, scale, sum_gramian=None):
    """`combine_blocks` for blocks that carry the loss `scale` of mixed precision (None
    without one): the method sees them without it, and the combined gradients carry
    it again (in the blocks' dtypes)."""
    if scale is None:
        return combine_blocks(method, blocks, losses, present, sum_gramian)
    combined, weights, residual = combine_blocks(
        method, [ops.cast(b, keras.config.floatx()) / scale for b in blocks], losses, present,
        sum_gramian)
    return ([ops.cast(c * scale, b.dtype) for c, b in zip(combined, blocks)], weights,
            residual)


def all_finite(task_losses, grads, optimizer, test="sum"):
    """Whether the task losses and the gradients that reach the optimizer are all
    finite, agreed by all replicas of a `tf.distribute` step (one replica's NaN
    reaches all). `test`: "sum" tests the sum of the tensors' sums (one reduction
    per tensor, the fewest ops for TensorFlow's graph executor: a NaN or Inf anywhere
    makes it non-finite, and so does a sum that overflows); "entries" tests every
    entry (exact; on JAX, where XLA fuses the test into the reduction, as fast as
    the sums). Under a `LossScaleOptimizer`, which skips steps with non-finite scaled
    gradients and lowers the scale itself, only the losses count."""
    tensors = [task_losses]
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        tensors += [g for g in grads if g is not None]
    if test == "entries":
        finite = ops.all(ops.stack([ops.all(ops.isfinite(t)) for t in tensors]))
        return replica_sum(ops.cast(ops.logical_not(finite), "int32")) == 0
    sums = [ops.cast(ops.sum(t), keras.config.floatx()) for t in tensors]
    return ops.isfinite(replica_sum(ops.sum(ops.stack(sums))))


def nonfinite_failure(task_names, step, losses, consequence):
    """The error message for a non-finite step recorded by a compiled step: what
    failed (the tasks whose loss is not finite, else a gradient, with all losses
    finite), the step, its losses and `consequence` (what the step did to the
    variables)."""
    losses = np.asarray(losses)
    bad = [n for n, l in zip(task_names, losses) if not np.isfinite(l)]
    what = (f"non-finite loss in task(s) {bad}" if bad
            else f"non-finite gradient with finite losses of task(s) {task_names}")
    return (f"keras_mtl: {what} at training step {step}, losses {losses.tolist()}; "
            f"{consequence}; compile(on_nonfinite='skip') skips such steps instead")
