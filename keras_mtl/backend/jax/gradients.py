"""The per-task gradients of the JAX trainer (`JAXTrainer._gradients` calls these):
a gradient method's combination of the per-task gradients of the shared variables
(rows of one `jax.vjp`'s pullbacks), GradNorm's gradients of its own variables, and
"representation" mode, where the per-task gradients are the Jacobian of the task
losses with respect to the shared representation (`jax.jacrev` through the heads),
combined and sent back through the trunk in one `jax.vjp`.

Every function takes the model first; gradients carry the loss `scale` of mixed
precision, the weighting method sees them without it.
"""

import jax
import keras
from keras import ops

from keras_mtl.backend.common import combine_loss_scaled
from keras_mtl.backend.jax.state import State, pullback_of, run_stateless, scaled
from keras_mtl.graph import shared_representation


def shared_parameter_gradients(model, task_rows, pullback, vector, regularized, aux,
                               t_vars, nt_vars, new_nt, trainable, scale):
    """Gradients when a gradient method combines the per-task gradients of the
    shared variables (`task_rows`, K per variable); other variables get the
    gradient of the summed task losses and the regularization (one pullback),
    the shared ones that of the regularization too, from a pullback of its own
    only when the model has regularization losses (with zero cotangents XLA
    still runs the task losses' whole backward pass). All of them carry the loss
    `scale`; the method sees the rows without it."""
    present, task_losses = aux.present, aux.active_losses
    num_tasks = len(model.task_names)
    shared_ids = {id(v) for v in model.shared_variables}
    index = [i for i, v in enumerate(t_vars) if id(v) in shared_ids]
    state = State(t_vars + nt_vars, list(trainable) + list(new_nt))
    combined, weights, residual = state.run(
        model.weighting.variables,
        lambda: combine_loss_scaled(model.weighting, [task_rows[i] for i in index],
                                    task_losses, present, scale))
    combined = dict(zip(index, combined))
    last = num_tasks + 1 if regularized else num_tasks
    summed = pullback_of(pullback, vector, list(range(1, last + 1)))
    if regularized:
        regularization = pullback_of(pullback, vector, [num_tasks + 1])
        combined = {i: c + regularization[i] for i, c in combined.items()}
    grads = [combined.get(i, g) for i, g in enumerate(summed)]
    return grads, weights, residual, state.get(nt_vars)


def with_weighting_gradients(model, task_rows, t_vars, grads, task_losses, present, state,
                             scale):
    """GradNorm: the method's own gradients from the per-task gradients of the
    last shared kernel (`task_rows`, K per variable), times the loss `scale` like
    every gradient."""
    num_tasks = len(model.task_names)
    kernel = model.last_shared_kernel
    at = next(i for i, v in enumerate(t_vars) if v is kernel)
    kernel_grads = ops.reshape(task_rows[at], (num_tasks, -1))
    if scale is not None:
        kernel_grads = ops.cast(kernel_grads, keras.config.floatx()) / scale
    own = state.run(model.weighting.variables,
                    lambda: model.weighting.weighting_gradients(task_losses, kernel_grads,
                                                                present))
    if own is None:
        return grads
    own = [scaled(g, scale) for g in own]
    by_id = dict(zip((id(v) for v in model.weighting.trainable_variables), own))
    return [by_id.get(id(v), g) for v, g in zip(t_vars, grads)]


def split_at_representation(model):
    """`(trunk, heads)`: models from the inputs to the shared representation and
    from it to the task outputs, sharing the model's layers (cached outside the
    attributes that `.keras` files save)."""
    cache = model._graph_cache()
    if "split" not in cache:
        representation = shared_representation(model)
        outputs = dict(zip(model.output_names, keras.tree.flatten(model.outputs)))
        try:
            heads = keras.Model(representation, outputs, name=f"{model.name}_heads")
        except ValueError as error:
            raise NotImplementedError(
                f"gradient_mode='representation' on the JAX backend needs every path from "
                f"the inputs of model {model.name!r} to its task outputs to pass through "
                f"the shared representation: {error}") from error
        trunk = keras.Model(model.inputs, representation, name=f"{model.name}_trunk")
        cache["split"] = (trunk, heads)
    return cache["split"]


def representation_gradients(model, trainable, non_trainable, x, y, sample_weight, scale):
    """Gradients for a gradient method in "representation" mode: the K per-task
    gradients of the shared representation (`jax.jacrev` through the heads),
    combined, then one backward pass through the trunk (`jax.vjp`); the heads'
    and the weighting method's variables get the gradient of the summed task
    losses, every variable that of the regularization losses (all of them times
    the loss `scale`, the method's rows without it). Returns what
    `JAXTrainer._gradients` does."""
    trunk, heads = split_at_representation(model)
    t_vars, nt_vars = model.trainable_variables, model.non_trainable_variables
    model_vars = t_vars + nt_vars

    def run_trunk(trainable_values):
        rep, new_nt = run_stateless(model_vars, list(trainable_values) + list(non_trainable),
                                    lambda: keras.tree.flatten(trunk(x, training=True)))
        return rep, new_nt[len(t_vars):]

    representation, trunk_vjp, nt_after_trunk = jax.vjp(run_trunk, trainable, has_aux=True)

    def run_heads(rep, trainable_values):
        def step():
            y_pred = heads(rep if len(rep) > 1 else rep[0], training=True)
            losses = model._step_losses(y, y_pred, sample_weight,
                                        ops.zeros((), keras.config.floatx()), training=True)
            return losses.active_losses, losses

        out, new_nt = run_stateless(model_vars, list(trainable_values) + list(nt_after_trunk), step)
        return scaled(out[0], scale), (out[1], new_nt[len(t_vars):])

    (rep_rows, head_rows), (aux, new_nt) = jax.jacrev(
        run_heads, argnums=(0, 1), has_aux=True)(representation, trainable)
    present, task_losses = aux.present, aux.active_losses
    state = State(model_vars, list(trainable) + list(new_nt))
    combined, weights, residual = state.run(
        model.weighting.variables,
        lambda: combine_loss_scaled(model.weighting, list(rep_rows), task_losses, present,
                                    scale))
    (trunk_grads,) = trunk_vjp(combined)

    def regularization(trainable_values):
        def forward():
            model(x, training=True)
            return model._regularization_loss()
        value = run_stateless(model_vars, list(trainable_values) + list(non_trainable), forward)[0]
        return scaled(value, scale), value

    (_, reg_value), reg_grads = jax.value_and_grad(regularization, has_aux=True)(trainable)
    shared_ids = {id(v) for v in model.shared_variables}
    grads = [(t if id(v) in shared_ids else ops.sum(h, axis=0)) + r
             for v, t, h, r in zip(t_vars, trunk_grads, head_rows, reg_grads)]
    step = aux._replace(weights=weights, total=aux.total + reg_value)
    return grads, step, state.get(nt_vars), residual
