"""Pieces of the train step that every backend's trainer shares (`keras.ops` only):
the flat layout of per-task gradients, their combination by a weighting method, and
the finiteness of a step."""

import keras
import numpy as np
from keras import ops

from keras_mtl._distribute import replica_sum
from keras_mtl.weighting.base import apply_weights, gramian


def flatten_gradients(grads, sources):
    """Concatenates gradients into one vector; a missing gradient counts as zeros."""
    return ops.concatenate([
        ops.reshape(g if g is not None else ops.zeros_like(s), (-1,))
        for g, s in zip(grads, sources)
    ])


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


def combine_rows(method, matrix, losses, present, sum_gramian=None):
    """`(combined, weights, residual)` of a gradient method for the K x P matrix of
    per-task gradients of one replica holding the whole batch: through the Gramian
    when the method needs only that, else through `combine_gradients` (residual
    None: the method reports none). `sum_gramian`, when given, turns this matrix's
    Gramian into the global batch's (replicas whose rows each span part of it); the
    weights then apply to this matrix's rows."""
    if method.uses_gramian:
        rows = ops.cast(matrix, keras.config.floatx())
        gram = gramian(rows)
        if sum_gramian is not None:
            gram = sum_gramian(gram)
        weights, residual = method.solve_gramian(gram, losses, present)
        return ops.cast(apply_weights(weights, rows), matrix.dtype), weights, residual
    combined, weights = method.combine_gradients(matrix, losses, present)
    return combined, weights, None


def all_finite(task_losses, grads, optimizer):
    """Whether the task losses and the gradients that reach the optimizer are all
    finite, from the sum of their sums (one reduction per tensor: a NaN or Inf
    anywhere makes it non-finite, and so does a sum that overflows), agreed by all
    replicas of a `tf.distribute` step (one replica's NaN reaches all). Under a
    `LossScaleOptimizer`, which skips steps with non-finite scaled gradients and
    lowers the scale itself, only the losses count."""
    sums = [ops.sum(task_losses)]
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        sums += [ops.cast(ops.sum(g), keras.config.floatx()) for g in grads if g is not None]
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
