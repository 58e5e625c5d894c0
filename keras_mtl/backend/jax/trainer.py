"""The JAX trainer of `MultiTaskModel`: a stateless train step, jit-compiled by Keras'
own JAX train function, in the style of Keras' `JAXTrainer`.

The step is a function of the training state `(trainable, non_trainable, optimizer,
metrics)` that Keras' `fit` threads from step to step. The weighting method's
variables (learned weights, loss histories, seed generator states) and the task
activity are part of that state: `trainable_variables` and `non_trainable_variables`
of the model include them, so every stateful call of a weighting method runs in a
`keras.StatelessScope` that maps its variables to their values in the state.

Gradients: `jax.value_and_grad` of the weighted objective for loss-weighting methods;
where per-task gradients are needed (gradient methods in "shared_parameters" mode,
GradNorm's last shared kernel), one `jax.vjp` of the vector `[objective, L_1..L_K,
regularization]` and a pullback per needed entry or sum of entries; in "representation"
mode, `jax.vjp` through the trunk and `jax.jacrev` of the task losses with respect to
the shared representation. Gradient methods see the per-task gradients per variable
(`combine_blocks`: the Gramian as a sum of per-variable Gramians), not as one K x P
matrix.

Non-finite steps (`on_nonfinite` "raise" and "skip"): a step whose task losses or
gradients are not finite changes no state. The optimizer applies the gradients in a
`keras.StatelessScope` that makes each of its assignments only where the step is
applied (`_GatedScope`), which lets XLA update the state in place; every other value
the step returns is selected between its new and old value.

Mixed precision: under a `LossScaleOptimizer` (the `mixed_float16` policy) every loss
is multiplied by the optimizer's loss scale before differentiation (`scale_loss`,
read from the step's optimizer state) and the optimizer's `stateless_apply` unscales
the gradients and skips steps whose gradients are not finite; the weighting methods
see per-task gradients without the scale.
"""

import jax
import jax.numpy as jnp
import keras
import numpy as np
from keras import ops

from keras_mtl.trainers.trainer import MultiTaskTrainer
from keras_mtl.backend.common import all_finite, combine_unscaled, nonfinite_failure, unique

# Under on_nonfinite="raise", how many calls of the train function pass between two
# reads of the non-finite record. Each read is of a copy taken at the previous read,
# long computed by then, so that no read waits for a step.
_CHECK_EVERY = 32


class _State:
    """The values of a list of Keras variables during a step, by variable identity."""

    def __init__(self, variables, values):
        self.values = {id(v): x for v, x in zip(variables, values)}

    def mapping(self, variables):
        return [(v, self.values[id(v)]) for v in variables]

    def get(self, variables):
        return [self.values[id(v)] for v in variables]

    def set(self, variables, values):
        for v, x in zip(variables, values):
            self.values[id(v)] = x

    def run(self, variables, fn, collect_losses=False):
        """`fn()` with `variables` read from (and assigned to) this state."""
        with keras.StatelessScope(state_mapping=self.mapping(variables),
                                  collect_losses=collect_losses) as scope:
            out = fn()
        self.set(variables, [scope.get_current_value(v) for v in variables])
        return out


def _run(variables, values, fn, collect_losses=True):
    """`(fn(), new_values)`: `fn` run with `variables` read from `values`."""
    state = _State(variables, values)
    out = state.run(variables, fn, collect_losses=collect_losses)
    return out, state.get(variables)


class _GatedScope(keras.StatelessScope):
    """A `keras.StatelessScope` in which an assignment takes effect only where `gate`
    is true (elsewhere the variable keeps its value); `gated` maps the ids of the
    values it assigned to them (held, so that no other value takes an id)."""

    def __init__(self, gate, state_mapping):
        super().__init__(state_mapping=state_mapping)
        self.gate, self.gated = gate, {}

    def add_update(self, update):
        variable, value = update
        kept = jnp.where(self.gate, value, self.get_current_value(variable))
        # Later reads of the variable (Adam's update reads the moments it has just
        # assigned) read the gated value: without the barrier XLA recomputes the moments
        # from their old values there, and copies the whole state to keep both.
        kept = jax.lax.optimization_barrier(kept)
        self.gated[id(kept)] = kept
        super().add_update((variable, kept))


def _gated_apply(gate, optimizer, optimizer_values, grads, variables, values):
    """`(new values, new optimizer values, gated)`: `optimizer.stateless_apply(
    optimizer_values, grads, values)` (`values`: those of the `variables` the
    optimizer was built on) with each of the optimizer's assignments made only where
    `gate` is true, which lets XLA update the state in place, and the values so
    gated by id (a value that changed in another way is not among them: whatever
    way a Keras release assigns variables in a stateless scope, a value is trusted
    only if it went through the gate). With `gate` None, or a `LossScaleOptimizer`
    (which assigns in its own `lax.cond`), nothing is gated."""
    if gate is None or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return (*optimizer.stateless_apply(optimizer_values, grads, values), {})
    variables = list(variables) + list(optimizer.variables)
    with _GatedScope(gate, list(zip(variables, list(values) + list(optimizer_values)))) as scope:
        optimizer.apply(grads)
    new = [scope.get_current_value(v) for v in variables]
    return new[:len(values)], new[len(values):], scope.gated


def _pullback(pullback, vector, entries):
    """The gradients (one per primal) of the sum of the `entries` of `vector`, from
    the `pullback` of its `jax.vjp`."""
    cotangent = jnp.zeros(vector.shape, vector.dtype).at[jnp.asarray(entries)].set(1)
    return pullback(cotangent)[0]


def _pullback_rows(pullback, vector, entries):
    """`rows[v]`: the gradients of `primals[v]` of each of the `entries` of `vector`,
    stacked, from the `pullback` of its `jax.vjp`: a pullback per entry, as
    `jax.jacrev`'s vmapped pullback runs convolution gradients several times slower on
    XLA's CPU backend, and dense ones no faster (`benchmarks/README.md`, gradient
    methods on JAX)."""
    per_entry = [_pullback(pullback, vector, [i]) for i in entries]
    return [jnp.stack(parts) for parts in zip(*per_entry)]


def _scaled(value, scale):
    """`value` times the loss scale (in its dtype), or `value` without one."""
    return value if scale is None else value * ops.cast(scale, value.dtype)


class _NonfiniteCheck(keras.callbacks.Callback):
    """Raises at the end of an epoch in which a step was not finite (the train
    function also reads, every `_CHECK_EVERY` calls, the record as it was at its
    previous read)."""

    def on_train_begin(self, logs=None):
        self.model._clear_nonfinite_record()

    def on_epoch_end(self, epoch, logs=None):
        self.model._raise_recorded_nonfinite()


class JAXTrainer(MultiTaskTrainer):
    """The JAX multi-task trainer (a mixin before `keras.Model`)."""

    # ----------------------------------------------------------- state layout

    @property
    def trainable_variables(self):
        """The network's trainable variables, then the weighting method's (the
        variables the model's `MultiOptimizer` is built on, in its order)."""
        weighting = self.__dict__.get("weighting")
        network = super().trainable_variables
        if weighting is None:
            return network
        return unique(list(network) + list(weighting.trainable_variables))

    @property
    def non_trainable_variables(self):
        """The network's non-trainable variables, then the weighting method's (with
        its seed generator states), the task activity and the non-finite record."""
        weighting = self.__dict__.get("weighting")
        variables = list(super().non_trainable_variables)
        if weighting is not None:
            variables += weighting.non_trainable_variables  # seed generator states included
        activity = self.__dict__.get("_task_activity")
        if activity is not None:
            variables.append(activity)
        variables += list(self.__dict__.get("_nonfinite_record", ()))
        return unique(variables)

    def _trainer_callbacks(self):
        return [_NonfiniteCheck()] if self.on_nonfinite == "raise" else []

    def _create_task_activity(self):
        # A new state variable: the jit-compiled step traces again for the new state.
        self.__dict__["_task_activity"] = keras.Variable(
            np.ones(len(self.task_names), keras.config.floatx()), trainable=False,
            name="task_activity")

    def _prepare_trainer(self):
        # The first non-finite step (-1: none) and its task losses, state of the step
        # (not saved with the model). From that step on, steps change nothing, and the
        # train function raises when it reads the record.
        self.__dict__["_nonfinite_record"] = (
            (keras.Variable(-1, dtype="int32", trainable=False, name="nonfinite_step"),
             keras.Variable(np.zeros(len(self.task_names), keras.config.floatx()),
                            trainable=False, name="nonfinite_losses"))
            if self.on_nonfinite == "raise" else ())
        mode = self.weighting.gradient_mode
        if mode == "representation":
            self._split_at_representation()  # raises for graphs it cannot split

    # ------------------------------------------------------------------ steps

    def _forward(self, x, y, sample_weight, training):
        """The model's forward pass and task losses, in the current stateless scope."""
        y_pred = self(x, training=training)
        regularization = self._regularization_loss()
        logged, counts = self._task_loss_vector(y, y_pred, sample_weight)
        present, task_losses = self._participating(logged, counts)
        return y_pred, regularization, logged, counts, present, task_losses

    def _weigh(self, y, y_pred, sample_weight, task_losses, present, regularization):
        self.weighting.observe(y, y_pred, sample_weight)
        objective, weights = self.weighting.combine(task_losses, training=True, present=present)
        return objective + regularization, weights

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_values, metrics_values = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y = self.labels_by_task(y)
        sample_weight = self._sample_weights_by_task(sample_weight)
        weighting = self.weighting
        t_vars, nt_vars = self.trainable_variables, self.non_trainable_variables
        model_vars = t_vars + nt_vars
        residual = None
        scale = self._loss_scale(optimizer_values)
        regularized = []  # whether the model has regularization losses (seen when tracing)

        def objective(trainable_values):
            def step():
                y_pred, regularization, logged, counts, present, task_losses = self._forward(
                    x, y, sample_weight, training=True)
                regularized.append(bool(self.losses))
                total, weights = self._weigh(y, y_pred, sample_weight, task_losses, present,
                                             regularization)
                vector = ops.concatenate([ops.reshape(total, (1,)), task_losses,
                                          ops.reshape(regularization, (1,))])
                return _scaled(vector, scale), (y_pred, logged, counts, present, task_losses,
                                                weights, total)

            (vector, aux), new_nt = _run(model_vars, list(trainable_values) + list(non_trainable),
                                         step)
            return vector, (aux, new_nt[len(t_vars):])

        mode = weighting.gradient_mode
        if mode == "representation":
            grads, aux, new_nt, weights, residual = self._representation_gradients(
                trainable, non_trainable, x, y, sample_weight, scale)
        elif mode is None and not weighting.needs_last_shared_gradients:
            def scalar(trainable_values):
                vector, aux = objective(trainable_values)
                return vector[0], aux
            (_, (aux, new_nt)), grads = jax.value_and_grad(scalar, has_aux=True)(trainable)
            weights = aux[5]
        else:
            vector, pullback, (aux, new_nt) = jax.vjp(objective, trainable, has_aux=True)
            weights = aux[5]
            task_rows = _pullback_rows(pullback, vector, range(1, len(self.task_names) + 1))
            if mode == "shared_parameters":
                grads, weights, residual, new_nt = self._shared_parameter_gradients(
                    task_rows, pullback, vector, regularized[0], aux, t_vars, nt_vars, new_nt,
                    trainable, scale)
            else:
                grads = _pullback(pullback, vector, [0])
        y_pred, logged, counts, present, task_losses, _, total = aux
        state_values = _State(model_vars, list(trainable) + list(new_nt))
        if weighting.needs_last_shared_gradients:
            grads = self._with_weighting_gradients(task_rows, t_vars, grads, task_losses,
                                                   present, state_values, scale)
        applied = record = None
        if self.on_nonfinite != "ignore":
            # A non-finite step changes nothing: skipped, or recorded for the train
            # function to raise, and then no later step changes anything either.
            finite = all_finite(task_losses, grads, self.optimizer, test="entries")
            applied, record = self._nonfinite_gate(finite, nt_vars, non_trainable,
                                                   optimizer_values, task_losses)
        new_trainable, new_optimizer, gated = _gated_apply(
            applied, self.optimizer, optimizer_values, grads, t_vars, trainable)
        state_values.set(t_vars, new_trainable)
        opt_state = _State(self.optimizer.variables, new_optimizer)
        self._freeze(state_values, opt_state, trainable, optimizer_values, present)

        if weighting.needs_post_step_losses:
            def post_step():
                new_pred = self(x, training=False)
                weighting.post_step(self._task_loss_vector(y, new_pred, sample_weight)[0],
                                    present)
            state_values.run(model_vars, post_step)

        def log():
            self._update_trackers(x, total, logged, weights, counts)
            if residual is not None:
                self._update_residual(residual, weights)
            return self.compute_metrics(x, y, y_pred, sample_weight)

        logs, new_metrics = self._run_logging(log, metrics_values, state_values)
        new_state = (state_values.get(t_vars), state_values.get(nt_vars),
                     opt_state.get(self.optimizer.variables), new_metrics)
        if applied is None:
            return logs, new_state
        # The values of the optimizer's gated assignments stand; every other value the
        # step returns is selected.
        old_state = (trainable, non_trainable, optimizer_values, metrics_values)
        new_state = jax.tree.map(
            lambda new, old: new if id(new) in gated else jnp.where(applied, new, old),
            new_state, old_state)
        if record is not None:
            recorded = _State(nt_vars, new_state[1])
            recorded.set(self._nonfinite_record, record)
            new_state = (new_state[0], recorded.get(nt_vars)) + new_state[2:]
        return logs, new_state

    def _nonfinite_gate(self, finite, nt_vars, non_trainable, optimizer_values, task_losses):
        """`(applied, record)`: whether the step changes the state (it is finite, and
        under "raise" no earlier step failed), and under "raise" the new values of
        the non-finite record (the first failed step's number and task losses)."""
        record = self.__dict__["_nonfinite_record"]
        if not record:
            return finite, None
        failed_step, failed_losses = _State(nt_vars, non_trainable).get(record)
        iterations = _State(self.optimizer.variables, optimizer_values).get(
            [self.optimizer.iterations])[0]
        first_failure = ops.logical_and(ops.logical_not(finite), failed_step < 0)
        return ops.logical_and(finite, failed_step < 0), [
            jnp.where(first_failure, ops.cast(iterations, "int32"), failed_step),
            jnp.where(first_failure, ops.cast(task_losses, failed_losses.dtype), failed_losses)]

    def _shared_parameter_gradients(self, task_rows, pullback, vector, regularized, aux,
                                    t_vars, nt_vars, new_nt, trainable, scale):
        """Gradients when a gradient method combines the per-task gradients of the
        shared variables (`task_rows`, K per variable); other variables get the
        gradient of the summed task losses and the regularization (one pullback),
        the shared ones that of the regularization too, from a pullback of its own
        only when the model has regularization losses (with zero cotangents XLA
        still runs the task losses' whole backward pass). All of them carry the loss
        `scale`; the method sees the rows without it."""
        _, _, _, present, task_losses, _, _ = aux
        num_tasks = len(self.task_names)
        shared_ids = {id(v) for v in self.shared_variables}
        index = [i for i, v in enumerate(t_vars) if id(v) in shared_ids]
        state = _State(t_vars + nt_vars, list(trainable) + list(new_nt))
        combined, weights, residual = state.run(
            self.weighting.variables,
            lambda: combine_unscaled(self.weighting, [task_rows[i] for i in index],
                                     task_losses, present, scale))
        combined = dict(zip(index, combined))
        last = num_tasks + 1 if regularized else num_tasks
        summed = _pullback(pullback, vector, list(range(1, last + 1)))
        if regularized:
            regularization = _pullback(pullback, vector, [num_tasks + 1])
            combined = {i: c + regularization[i] for i, c in combined.items()}
        grads = [combined.get(i, g) for i, g in enumerate(summed)]
        return grads, weights, residual, state.get(nt_vars)

    def _with_weighting_gradients(self, task_rows, t_vars, grads, task_losses, present, state,
                                  scale):
        """GradNorm: the method's own gradients from the per-task gradients of the
        last shared kernel (`task_rows`, K per variable), times the loss `scale` like
        every gradient."""
        num_tasks = len(self.task_names)
        kernel = self.last_shared_kernel
        at = next(i for i, v in enumerate(t_vars) if v is kernel)
        kernel_grads = ops.reshape(task_rows[at], (num_tasks, -1))
        if scale is not None:
            kernel_grads = ops.cast(kernel_grads, keras.config.floatx()) / scale
        own = state.run(self.weighting.variables,
                        lambda: self.weighting.weighting_gradients(task_losses, kernel_grads,
                                                                   present))
        if own is None:
            return grads
        own = [_scaled(g, scale) for g in own]
        by_id = dict(zip((id(v) for v in self.weighting.trainable_variables), own))
        return [by_id.get(id(v), g) for v, g in zip(t_vars, grads)]

    def _split_at_representation(self):
        """`(trunk, heads)`: models from the inputs to the shared representation and
        from it to the task outputs, sharing this model's layers (cached outside the
        attributes that `.keras` files save)."""
        cache = self.__dict__.setdefault("_graph_cache", {})
        if "split" not in cache:
            from keras_mtl.graph import shared_representation
            representation = shared_representation(self)
            outputs = dict(zip(self.output_names, keras.tree.flatten(self.outputs)))
            try:
                heads = keras.Model(representation, outputs, name=f"{self.name}_heads")
            except ValueError as error:
                raise NotImplementedError(
                    f"gradient_mode='representation' on the JAX backend needs every path from "
                    f"the inputs of model {self.name!r} to its task outputs to pass through "
                    f"the shared representation: {error}") from error
            trunk = keras.Model(self.inputs, representation, name=f"{self.name}_trunk")
            cache["split"] = (trunk, heads)
        return cache["split"]

    def _representation_gradients(self, trainable, non_trainable, x, y, sample_weight, scale):
        """Gradients for a gradient method in "representation" mode: the K per-task
        gradients of the shared representation (`jax.jacrev` through the heads),
        combined, then one backward pass through the trunk (`jax.vjp`); the heads'
        and the weighting method's variables get the gradient of the summed task
        losses, every variable that of the regularization losses (all of them times
        the loss `scale`, the method's rows without it)."""
        trunk, heads = self._split_at_representation()
        t_vars, nt_vars = self.trainable_variables, self.non_trainable_variables
        model_vars = t_vars + nt_vars

        def run_trunk(trainable_values):
            rep, new_nt = _run(model_vars, list(trainable_values) + list(non_trainable),
                               lambda: keras.tree.flatten(trunk(x, training=True)))
            return rep, new_nt[len(t_vars):]

        representation, trunk_vjp, nt_after_trunk = jax.vjp(run_trunk, trainable, has_aux=True)

        def run_heads(rep, trainable_values):
            def step():
                y_pred = heads(rep if len(rep) > 1 else rep[0], training=True)
                logged, counts = self._task_loss_vector(y, y_pred, sample_weight)
                present, task_losses = self._participating(logged, counts)
                objective, weights = self._weigh(y, y_pred, sample_weight, task_losses, present,
                                                 ops.zeros((), keras.config.floatx()))
                return task_losses, (y_pred, logged, counts, present, task_losses, weights,
                                     objective)

            out, new_nt = _run(model_vars, list(trainable_values) + list(nt_after_trunk), step)
            return _scaled(out[0], scale), (out[1], new_nt[len(t_vars):])

        (rep_rows, head_rows), (aux, new_nt) = jax.jacrev(
            run_heads, argnums=(0, 1), has_aux=True)(representation, trainable)
        _, _, _, present, task_losses, _, objective = aux
        state = _State(model_vars, list(trainable) + list(new_nt))
        combined, weights, residual = state.run(
            self.weighting.variables,
            lambda: combine_unscaled(self.weighting, list(rep_rows), task_losses, present,
                                     scale))
        (trunk_grads,) = trunk_vjp(combined)

        def regularization(trainable_values):
            def forward():
                self(x, training=True)
                return self._regularization_loss()
            value = _run(model_vars, list(trainable_values) + list(non_trainable), forward)[0]
            return _scaled(value, scale), value

        (_, reg_value), reg_grads = jax.value_and_grad(regularization, has_aux=True)(trainable)
        shared_ids = {id(v) for v in self.shared_variables}
        grads = [(t if id(v) in shared_ids else ops.sum(h, axis=0)) + r
                 for v, t, h, r in zip(t_vars, trunk_grads, head_rows, reg_grads)]
        aux = aux[:6] + (objective + reg_value,)
        return grads, aux, state.get(nt_vars), weights, residual

    def _run_logging(self, log, metrics_values, state):
        """`(log(), new metrics values)`, with the task activity read from `state`."""
        metrics = self.metrics_variables
        extra = [v for v in [self.__dict__.get("_task_activity")] if v is not None]
        logs, values = _run(metrics + extra, list(metrics_values) + state.get(extra), log, False)
        return logs, values[:len(metrics)]

    def _freeze(self, state, opt_state, old_trainable, old_optimizer, present):
        """Restores, per task that takes no part in the step, its variables and its
        own optimizer's state (`_frozen_when_absent`)."""
        per_task = self._frozen_when_absent()
        if not per_task:
            return
        t_ids = {id(v) for v in self.trainable_variables}
        old_t = _State(self.trainable_variables, old_trainable)
        old_o = _State(self.optimizer.variables, old_optimizer)
        if self.freeze_absent_tasks:
            updated = present
        else:
            updated = state.get([self._task_activity])[0] > 0
        for k, variables in enumerate(per_task):
            for v in variables:
                new, old = (state, old_t) if id(v) in t_ids else (opt_state, old_o)
                value = new.values[id(v)]
                new.values[id(v)] = jnp.where(updated[k], value, old.values[id(v)])

    def _loss_scale(self, optimizer_values):
        """The loss scale of a `LossScaleOptimizer` in the step's optimizer state, or None."""
        if not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            return None
        one = ops.ones((), keras.config.floatx())
        return _State(self.optimizer.variables, optimizer_values).run(
            self.optimizer.variables,
            lambda: ops.cast(self.optimizer.scale_loss(one), keras.config.floatx()))

    def test_step(self, state, data):
        trainable, non_trainable, metrics_values = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y = self.labels_by_task(y)
        sample_weight = self._sample_weights_by_task(sample_weight)
        model_vars = self.trainable_variables + self.non_trainable_variables

        def step():
            y_pred, regularization, logged, counts, present, task_losses = self._forward(
                x, y, sample_weight, training=False)
            objective, weights = self.weighting.combine(task_losses, training=False,
                                                        present=present)
            return y_pred, objective + regularization, logged, weights, counts

        (y_pred, total, logged, weights, counts), new_values = _run(
            model_vars, list(trainable) + list(non_trainable), step)

        def log():
            self._update_trackers(x, total, logged, weights, counts)
            return self.compute_metrics(x, y, y_pred, sample_weight)

        logs, new_metrics = self._run_logging(
            log, metrics_values, _State(model_vars, new_values))
        return logs, (trainable, new_values[len(trainable):], new_metrics)

    # --------------------------------------------------------- train function

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force=True)
        step = self.train_function
        if self.on_nonfinite != "raise":
            return step

        def function(state, iterator):
            calls = self.__dict__.get("_calls_since_check", 0) + 1
            self.__dict__["_calls_since_check"] = calls % _CHECK_EVERY
            if calls == _CHECK_EVERY:
                # The copy taken `_CHECK_EVERY` calls ago; then a copy (dispatched, not
                # waited for) of the record in the state the previous call returned,
                # before this call's step takes (donates) that state. The record is
                # found there at each read: state variables made after this function
                # (the task activity) come before it. From a failed step on no step
                # changes the state, so `state` is the state from before it.
                at = next(i for i, v in enumerate(self.non_trainable_variables)
                          if v is self._nonfinite_record[0])
                earlier = self.__dict__.get("_record_copy")
                self.__dict__["_record_copy"] = jnp.copy(state[1][at])
                if earlier is not None and int(earlier) >= 0:
                    self._restore(state)
                    self._raise_recorded_nonfinite()
            return step(state, iterator)

        self.train_function = function
        return function

    def train_on_batch(self, *args, **kwargs):
        self._clear_nonfinite_record()
        logs = super().train_on_batch(*args, **kwargs)  # writes the state into the model
        self._raise_recorded_nonfinite()
        return logs

    def _clear_nonfinite_record(self):
        """A record left in the model when a step raised for it: `fit` writes the
        state back into the model after that, record included."""
        self.__dict__["_calls_since_check"] = 0
        self.__dict__["_record_copy"] = None
        for v in self.__dict__.get("_nonfinite_record", ())[:1]:
            v.assign(-1)

    def _restore(self, state):
        """Writes the state a step returned (unchanged by a non-finite step) back into
        the model's variables, which Keras' `fit` holds only in the state."""
        trainable, non_trainable, optimizer_values, metrics_values = state
        for variables, values in ((self.trainable_variables, trainable),
                                  (self.non_trainable_variables, non_trainable),
                                  (self.optimizer.variables, optimizer_values),
                                  (self.metrics_variables, metrics_values)):
            for v, value in zip(variables, values):
                v.assign(value)

    def _raise_recorded_nonfinite(self):
        """Raises for the first non-finite step in the model's record (the model
        holds the state from before that step)."""
        record = self.__dict__.get("_nonfinite_record")
        if not record or int(record[0].numpy()) < 0:
            return
        raise FloatingPointError(nonfinite_failure(
            self.task_names, int(record[0].numpy()), record[1].numpy(),
            "no variable changed from that step on"))
