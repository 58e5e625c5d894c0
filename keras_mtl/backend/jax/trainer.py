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

One batch: `train_step` routes the batch (`MultiTaskTrainer._routed`), takes the
`StepLosses` and the scaled gradients (`_gradients`; the per-task gradients of
gradient methods and GradNorm in `keras_mtl/backend/jax/gradients.py`), gates the
optimizer's update by the non-finite policy, freezes the tasks that take no part,
and logs; the policies are in `keras_mtl/backend/jax/policies.py`, the stateless
machinery (values of variables by identity, the gated update, pullbacks) in
`keras_mtl/backend/jax/state.py`.

Non-finite steps (`on_nonfinite` "raise" and "skip"): a step whose task losses or
gradients are not finite changes no state. The optimizer applies the gradients in a
`keras.StatelessScope` that makes each of its assignments only where the step is
applied (`state.GatedScope`), which lets XLA update the state in place; every other
value the step returns is selected between its new and old value.

Mixed precision: under a `LossScaleOptimizer` (the `mixed_float16` policy) every loss
is multiplied by the optimizer's loss scale before differentiation (`scale_loss`,
read from the step's optimizer state) and the optimizer's `stateless_apply` unscales
the gradients and skips steps whose gradients are not finite; the weighting methods
see per-task gradients without the scale.
"""


import jax
import keras
import numpy as np
from keras import ops

from keras_mtl.backend.common import unique
from keras_mtl.backend.jax import gradients, policies
from keras_mtl.backend.jax.state import (State, gated_apply, pullback_of, pullback_rows,
                                         run_stateless, scaled)
from keras_mtl.trainers.trainer import MultiTaskTrainer


class JAXTrainer(MultiTaskTrainer):
    """The JAX multi-task trainer (a mixin before `keras.Model`)."""

    # ----------------------------------------------------------- state layout

    @property
    def trainable_variables(self):
        """The network's trainable variables, then the weighting method's (the
        variables the model's `MultiOptimizer` is built on, in its order)."""
        weighting = getattr(self, "weighting", None)
        network = super().trainable_variables
        if weighting is None:
            return network
        return unique(list(network) + list(weighting.trainable_variables))

    @property
    def non_trainable_variables(self):
        """The network's non-trainable variables, then the weighting method's (with
        its seed generator states), the task activity and the non-finite record."""
        weighting = getattr(self, "weighting", None)
        variables = list(super().non_trainable_variables)
        if weighting is not None:
            variables += weighting.non_trainable_variables  # seed generator states included
        activity = getattr(self, "_task_activity", None)
        if activity is not None:
            variables.append(activity)
        variables += list(getattr(self, "_nonfinite_record", ()))
        return unique(variables)

    def _create_task_activity(self):
        # A new state variable: the jit-compiled step traces again for the new state.
        self._set_untracked(_task_activity=keras.Variable(
            np.ones(len(self.task_names), keras.config.floatx()), trainable=False,
            name="task_activity"))

    def _prepare_trainer(self):
        # The first non-finite step (-1: none) and its task losses, state of the step
        # (not saved with the model). From that step on, steps change nothing, and the
        # train function raises when it reads the record.
        self._set_untracked(_nonfinite_record=(
            (keras.Variable(-1, dtype="int32", trainable=False, name="nonfinite_step"),
             keras.Variable(np.zeros(len(self.task_names), keras.config.floatx()),
                            trainable=False, name="nonfinite_losses"))
            if self.on_nonfinite == "raise" else ()))
        mode = self.weighting.gradient_mode
        if mode == "representation":
            gradients.split_at_representation(self)  # raises for graphs it cannot split

    # ------------------------------------------------------------------ steps

    def _forward(self, x, y, sample_weight, training):
        """`(StepLosses, regularization)` of the forward pass, in the current
        stateless scope."""
        y_pred = self(x, training=training)
        regularization = self._regularization_loss()
        return self._step_losses(y, y_pred, sample_weight, regularization, training), regularization

    def train_step(self, state, data):
        trainable, non_trainable, optimizer_values, metrics_values = state
        x, y, sample_weight = self._routed(data)
        t_vars, model_vars = self.trainable_variables, self._state_variables()
        loss_scale = self._loss_scale(optimizer_values)
        grads, step, new_non_trainable, residual = self._gradients(
            trainable, non_trainable, x, y, sample_weight, loss_scale)
        values = State(model_vars, list(trainable) + list(new_non_trainable))
        policy = policies.nonfinite_policy(self)
        applied = policy.gate(step, grads, non_trainable, optimizer_values)
        new_trainable, new_optimizer, gated = gated_apply(
            applied, self.optimizer, optimizer_values, grads, t_vars, trainable)
        values.set(t_vars, new_trainable)
        optimizer_state = State(self.optimizer.variables, new_optimizer)
        policies.freeze_tasks(self, values, optimizer_state, trainable, optimizer_values,
                              step.present)
        values.run(model_vars, lambda: self._post_step(x, y, sample_weight, step.present))
        logs, new_metrics = self._run_logging(
            lambda: self._log_step(x, y, sample_weight, step, residual), metrics_values, values)
        new_state = (values.get(t_vars), values.get(self.non_trainable_variables),
                     optimizer_state.get(self.optimizer.variables), new_metrics)
        return logs, policy.finish(new_state, state, gated)

    def _state_variables(self):
        return self.trainable_variables + self.non_trainable_variables

    def _gradients(self, trainable, non_trainable, x, y, sample_weight, loss_scale):
        """`(gradients, step, new non-trainable values, residual)`: the scaled
        gradients of the trainable variables, the `StepLosses` (with the task weights
        that a gradient method's combination used), and the solver's residual (None
        when the method reports none)."""
        weighting = self.weighting
        t_vars, nt_vars = self.trainable_variables, self.non_trainable_variables
        if weighting.gradient_mode == "representation":
            return gradients.representation_gradients(self, trainable, non_trainable, x, y,
                                                     sample_weight, loss_scale)
        regularized = []  # whether the model has regularization losses (seen when tracing)

        def losses(trainable_values):
            """The scaled vector `[total, L_1..L_K, regularization]`."""
            def forward():
                step, regularization = self._forward(x, y, sample_weight, training=True)
                regularized.append(bool(self.losses))
                vector = ops.concatenate([ops.reshape(step.total, (1,)), step.active_losses,
                                          ops.reshape(regularization, (1,))])
                return scaled(vector, loss_scale), step

            (vector, step), new_nt = run_stateless(
                t_vars + nt_vars, list(trainable_values) + list(non_trainable), forward)
            return vector, (step, new_nt[len(t_vars):])

        if weighting.gradient_mode is None and not weighting.needs_last_shared_gradients:
            def objective(trainable_values):
                vector, aux = losses(trainable_values)
                return vector[0], aux

            (_, (step, new_nt)), grads = jax.value_and_grad(objective, has_aux=True)(trainable)
            return grads, step, new_nt, None
        vector, pullback, (step, new_nt) = jax.vjp(losses, trainable, has_aux=True)
        task_rows = pullback_rows(pullback, vector, range(1, len(self.task_names) + 1))
        residual = None
        if weighting.gradient_mode == "shared_parameters":
            grads, weights, residual, new_nt = gradients.shared_parameter_gradients(
                self, task_rows, pullback, vector, regularized[0], step, t_vars, nt_vars, new_nt,
                trainable, loss_scale)
            step = step._replace(weights=weights)
        else:
            grads = pullback_of(pullback, vector, [0])
        if weighting.needs_last_shared_gradients:
            # The method's own gradients may write its state (GradNorm's first losses).
            state = State(t_vars + nt_vars, list(trainable) + list(new_nt))
            grads = gradients.with_weighting_gradients(
                self, task_rows, t_vars, grads, step.active_losses, step.present, state, loss_scale)
            new_nt = state.get(nt_vars)
        return grads, step, new_nt, residual

    def _run_logging(self, log, metrics_values, state):
        """`(log(), new metrics values)`, with the task activity read from `state`."""
        metrics = self.metrics_variables
        extra = [v for v in [getattr(self, "_task_activity", None)] if v is not None]
        logs, values = run_stateless(metrics + extra, list(metrics_values) + state.get(extra), log, False)
        return logs, values[:len(metrics)]

    def _loss_scale(self, optimizer_values):
        """The loss scale of a `LossScaleOptimizer` in the step's optimizer state, or None."""
        if not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            return None
        one = ops.ones((), keras.config.floatx())
        return State(self.optimizer.variables, optimizer_values).run(
            self.optimizer.variables,
            lambda: ops.cast(self.optimizer.scale_loss(one), keras.config.floatx()))

    def test_step(self, state, data):
        trainable, non_trainable, metrics_values = state
        x, y, sample_weight = self._routed(data)
        model_vars = self.trainable_variables + self.non_trainable_variables
        step, new_values = run_stateless(model_vars, list(trainable) + list(non_trainable),
                                lambda: self._forward(x, y, sample_weight, training=False)[0])

        def log():
            return self._evaluation_logs(self._log_step(x, y, sample_weight, step))

        logs, new_metrics = self._run_logging(
            log, metrics_values, State(model_vars, new_values))
        return logs, (trainable, new_values[len(trainable):], new_metrics)

    # --------------------------------------------------------- train function

    def _trainer_callbacks(self):
        return [policies.NonfiniteCheck()] if self.on_nonfinite == "raise" else []

    def make_train_function(self, force=False):
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force=True)
        if self.on_nonfinite == "raise":
            self.train_function = policies.checking_train_function(self, self.train_function)
        return self.train_function

    def train_on_batch(self, *args, **kwargs):
        self._clear_nonfinite_record()
        logs = super().train_on_batch(*args, **kwargs)  # writes the state into the model
        self._raise_recorded_nonfinite()
        return logs

    def _clear_nonfinite_record(self):
        policies.clear_record(self)

    def _raise_recorded_nonfinite(self):
        policies.raise_recorded(self)

