"""The per-task gradients of the TensorFlow trainer (`TensorFlowTrainer._gradients`
calls these): a gradient method's combination of the per-task gradients of the shared
variables or of the shared representation, under `tf.distribute` replicas and the
loss scale of mixed precision, and GradNorm's gradients of its own variables.

Every function takes the model first; `scaled_*` losses and the gradients returned are
scaled as the trainer's module docstring says, the weighting method sees the gradients
without the loss scale.
"""

import tensorflow as tf
from keras import ops

from keras_mtl import _distribute
from keras_mtl.backend.common import combine_loss_scaled, unflatten


def with_weighting_gradients(model, tape, task_losses, present, per_task, variables, grads):
    """`grads` with the weighting method's own variables' gradients (GradNorm's),
    computed from the per-task gradients of the last shared kernel (`per_task`:
    the unscaled active task losses)."""
    kernel = model.last_shared_kernel
    kernel_grads = [ops.reshape(tape.gradient(l, kernel), (-1,)) for l in per_task]
    # Each replica's gradient of a task loss is the replica count times its share.
    kernel_grads = _distribute.replica_sum(ops.stack(kernel_grads)) / _distribute.num_replicas()
    own = model.weighting.weighting_gradients(task_losses, kernel_grads, present)
    if own is None:
        return grads
    # Like every other gradient: summed over replicas, unscaled by the optimizer.
    own = [model._scaled(g) for g in own]
    by_id = dict(zip((id(v) for v in model.weighting.trainable_variables), own))
    return [by_id.get(id(v), g) for v, g in zip(variables, grads)]


def gradient_method_gradients(model, tape, task_losses, present, scaled_per_task, scaled_rest,
                              scaled_regularization, variables, representation=None):
    """Gradients for a weighting method that combines per-task gradients; other
    variables get the plain gradient of the task losses. Returns
    `(gradients, task_weights, residual)` (residual None when the method reports
    none).

    The method gets the per-task gradients in blocks (`combine_blocks`): the K
    tasks' gradients of each shared variable, or, with a `representation` (list
    of tensors), of each tensor of the shared representation; then the combined
    representation gradient goes back through the trunk in one pass.
    """
    shared_ids = {id(v) for v in model.shared_variables}
    shared = [v for v in variables if id(v) in shared_ids]
    others = [v for v in variables if id(v) not in shared_ids]
    sources = shared if representation is None else representation
    # A source that a task's loss does not reach gets a zero gradient from it.
    per_task = [tape.gradient(l, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)
                for l in scaled_per_task]
    blocks = [ops.stack(grads) for grads in zip(*per_task)]
    # Methods see the true gradients: without the loss scale of mixed precision.
    method, scale = model.weighting, model._loss_scale()
    if representation is None:
        # Each replica's blocks are its share of the global batch's gradients: the
        # method sees their sums (one batched all-reduce), and every replica then
        # holds the whole combined gradient (divided by the replica count, as
        # replicas' gradients add up).
        replicas = _distribute.num_replicas()
        combined, weights, residual = combine_loss_scaled(
            method, _distribute.replica_sum(blocks), task_losses, present, scale)
        if replicas > 1:
            combined = [c / replicas for c in combined]
    elif method.uses_gramian:
        # The replicas' blocks of the representation span the batch: the global
        # Gramian is the sum of the replicas' Gramians, and each replica applies
        # the weights to its own blocks.
        combined, weights, residual = combine_loss_scaled(
            method, blocks, task_losses, present, scale, sum_gramian=_distribute.replica_sum)
    else:
        # The method sees the K x P matrix of all replicas' blocks side by side;
        # each replica keeps its own columns of the combined gradient.
        matrix = ops.concatenate(
            [ops.reshape(b, (len(scaled_per_task), -1)) for b in blocks], axis=1)
        everyone, start = _distribute.replica_concat(matrix, axis=1)
        (combined,), weights, residual = combine_loss_scaled(
            method, [everyone], task_losses, present, scale)
        combined = unflatten(combined[start:start + ops.shape(matrix)[1]],
                             [b[0] for b in blocks])
    if representation is not None:
        combined = tape.gradient(representation, shared, output_gradients=combined)
    if model.losses:
        reg_grads = tape.gradient(scaled_regularization, shared)
        combined = [g if r is None else g + r for g, r in zip(combined, reg_grads)]
    by_id = dict(zip((id(v) for v in shared), combined))
    by_id.update(zip((id(v) for v in others), tape.gradient(scaled_rest, others)))
    return [by_id[id(v)] for v in variables], weights, residual
