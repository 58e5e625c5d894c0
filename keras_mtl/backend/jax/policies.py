"""The JAX step's update policies, each an object with explicit state, made per traced
step (as the TensorFlow ones in `keras_mtl/backend/tensorflow/policies.py`):

- the non-finite policy (`on_nonfinite`), in the spirit of optax's `apply_if_finite`:
  `ApplyAlways` ("ignore"); `SkipNonfinite` ("skip"): a step whose task losses or
  gradients are not finite changes no state; `RecordNonfinite` ("raise"): likewise,
  and the step records the first failure (its number and task losses) in the state,
  from which step on no step changes anything, and the train function raises
  (`checking_train_function`, `NonfiniteCheck`). `gate(...)` gives the condition under
  which the optimizer's assignments take effect (`state.gated_apply`), `finish(...)`
  selects every other value of the step's new state.
- `freeze_tasks`: a task that takes no part in the step (absent under
  `freeze_absent_tasks`, or inactive in `task_activity`) keeps its variables and its
  own optimizer's state.
"""

import jax
import jax.numpy as jnp
import keras
from keras import ops

from keras_mtl.backend.common import all_finite, nonfinite_failure
from keras_mtl.backend.jax.state import State

# Under on_nonfinite="raise", how many calls of the train function pass between two
# reads of the non-finite record. Each read is of a copy taken at the previous read,
# long computed by then, so that no read waits for a step.
CHECK_EVERY = 32


class ApplyAlways:
    """Every step's update is applied."""

    def __init__(self, model):
        self.model = model

    def gate(self, step, grads, non_trainable, optimizer_values):
        return None

    def finish(self, new_state, old_state, gated):
        return new_state


class _GateNonfinite(ApplyAlways):
    """A step that is not `applied` (set by `gate`) changes no state."""

    def finish(self, new_state, old_state, gated):
        # The values of the optimizer's gated assignments stand; every other value the
        # step returns is selected.
        return jax.tree.map(
            lambda new, old: new if id(new) in gated else jnp.where(self.applied, new, old),
            new_state, old_state)


class SkipNonfinite(_GateNonfinite):
    """A step whose task losses or gradients are not finite changes no state but
    the count of skipped steps (`skipped_steps`)."""

    def gate(self, step, grads, non_trainable, optimizer_values):
        self.applied = all_finite(step.active_losses, grads, self.model.optimizer, test="entries")
        return self.applied

    def finish(self, new_state, old_state, gated):
        new_state = super().finish(new_state, old_state, gated)
        tracker, variables = self.model._skipped_tracker, self.model.metrics_variables
        metrics = State(variables, new_state[3])
        metrics.run(tracker.variables, lambda: tracker.update_state(self.applied))
        return new_state[:3] + (metrics.get(variables),)


class RecordNonfinite(_GateNonfinite):
    """`SkipNonfinite`, and the first non-finite step is recorded in the state (the
    model's `_nonfinite_record`); from it on no step changes anything."""

    def gate(self, step, grads, non_trainable, optimizer_values):
        model = self.model
        finite = all_finite(step.active_losses, grads, model.optimizer, test="entries")
        failed_step, failed_losses = State(model.non_trainable_variables, non_trainable).get(
            model._nonfinite_record)
        iterations = State(model.optimizer.variables, optimizer_values).get(
            [model.optimizer.iterations])[0]
        first_failure = ops.logical_and(ops.logical_not(finite), failed_step < 0)
        self.record = [
            jnp.where(first_failure, ops.cast(iterations, "int32"), failed_step),
            jnp.where(first_failure, ops.cast(step.active_losses, failed_losses.dtype),
                      failed_losses)]
        self.applied = ops.logical_and(finite, failed_step < 0)
        return self.applied

    def finish(self, new_state, old_state, gated):
        new_state = super().finish(new_state, old_state, gated)
        recorded = State(self.model.non_trainable_variables, new_state[1])
        recorded.set(self.model._nonfinite_record, self.record)
        return (new_state[0], recorded.get(self.model.non_trainable_variables)) + new_state[2:]


def nonfinite_policy(model):
    """The policy object of `model.on_nonfinite`."""
    return {"ignore": ApplyAlways, "skip": SkipNonfinite, "raise": RecordNonfinite}[
        model.on_nonfinite](model)


def freeze_tasks(model, state, opt_state, old_trainable, old_optimizer, present):
    """Restores in `state` and `opt_state`, per task that takes no part in the step,
    its variables and its own optimizer's state (`_frozen_when_absent`)."""
    per_task = model._frozen_when_absent()
    if not per_task:
        return
    t_ids = {id(v) for v in model.trainable_variables}
    old_t = State(model.trainable_variables, old_trainable)
    old_o = State(model.optimizer.variables, old_optimizer)
    if model.freeze_absent_tasks:
        updated = present
    else:
        updated = state.get([model._task_activity])[0] > 0
    for k, variables in enumerate(per_task):
        for v in variables:
            new, old = (state, old_t) if id(v) in t_ids else (opt_state, old_o)
            new.values[id(v)] = jnp.where(updated[k], new.values[id(v)], old.values[id(v)])


class NonfiniteCheck(keras.callbacks.Callback):
    """Raises at the end of an epoch in which a step was not finite (the train
    function also reads, every `CHECK_EVERY` calls, the record as it was at its
    previous read)."""

    def on_train_begin(self, logs=None):
        clear_record(self.model)

    def on_epoch_end(self, epoch, logs=None):
        raise_recorded(self.model)


def checking_train_function(model, step):
    """Keras' train function `step`, reading the non-finite record every
    `CHECK_EVERY` calls."""

    def function(state, iterator):
        calls = getattr(model, "_calls_since_check", 0) + 1
        model._set_untracked(_calls_since_check=calls % CHECK_EVERY)
        if calls == CHECK_EVERY:
            # The copy taken `CHECK_EVERY` calls ago; then a copy (dispatched, not
            # waited for) of the record in the state the previous call returned,
            # before this call's step takes (donates) that state. The record is
            # found there at each read: state variables made after this function
            # (the task activity) come before it. From a failed step on no step
            # changes the state, so `state` is the state from before it.
            at = next(i for i, v in enumerate(model.non_trainable_variables)
                      if v is model._nonfinite_record[0])
            earlier = getattr(model, "_record_copy", None)
            model._set_untracked(_record_copy=jnp.copy(state[1][at]))
            if earlier is not None and int(earlier) >= 0:
                restore(model, state)
                raise_recorded(model)
        return step(state, iterator)

    return function


def clear_record(model):
    """A record left in the model when a step raised for it: `fit` writes the
    state back into the model after that, record included."""
    model._set_untracked(_calls_since_check=0, _record_copy=None)
    for v in getattr(model, "_nonfinite_record", ())[:1]:
        v.assign(-1)


def restore(model, state):
    """Writes the state a step returned (unchanged by a non-finite step) back into
    the model's variables, which Keras' `fit` holds only in the state."""
    trainable, non_trainable, optimizer_values, metrics_values = state
    for variables, values in ((model.trainable_variables, trainable),
                              (model.non_trainable_variables, non_trainable),
                              (model.optimizer.variables, optimizer_values),
                              (model.metrics_variables, metrics_values)):
        for v, value in zip(variables, values):
            v.assign(value)


def raise_recorded(model):
    """Raises for the first non-finite step in the model's record (the model holds
    the state from before that step)."""
    record = getattr(model, "_nonfinite_record", None)
    if not record or int(record[0].numpy()) < 0:
        return
    raise FloatingPointError(nonfinite_failure(
        model.task_names, int(record[0].numpy()), record[1].numpy(),
        "no variable changed from that step on"))
