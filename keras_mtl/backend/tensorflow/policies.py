"""The TensorFlow step's update policies: wrappers around the optimizer's update.

Each policy is an object made for one traced step, with the state it needs (its
snapshots of variables), in the spirit of optax's `apply_if_finite` and Keras'
`LossScaleOptimizer`: `ApplyGradients` applies the gradients (`on_nonfinite="ignore"`),
and each wrapper adds one behaviour around the policy it wraps:

- `FreezeTasks`: a task that takes no part in the step (absent from the batch under
  `freeze_absent_tasks`, or inactive in `task_activity`) keeps its variables and its
  own optimizer's state.
- `SkipNonfinite` (`on_nonfinite="skip"`): a step with a non-finite task loss or
  gradient changes no variable, optimizer or weighting state and counts for nothing
  in the logs.
- `RaiseNonfinite` (`on_nonfinite="raise"`, graph): such a step raises before the
  update, with the forward pass's changes undone.
- `RecordNonfinite` (`on_nonfinite="raise"` under XLA, which cannot compile
  assertions): the step records the first failure; the train function raises.

The step calls, in order: `begin()` before the forward pass, `apply(grads, variables,
step)` (returns whether the step is finite, None when nothing checks), `end(finite)`
after the step's last change of state, and `logs(...)` for its logs.
"""

import tensorflow as tf
from keras import ops

from keras_mtl.backend.common import all_finite, nonfinite_failure, unique

# The log where an XLA step under on_nonfinite="raise" reports its non-finite record
# (the first non-finite step, -1 for none; only its sign is read there, the step itself
# from the record); the train function takes it out.
RECORDED_STEP = "keras_mtl_nonfinite_step"


def snapshot(variables):
    """The variables' current values, read before the step's later assignments."""
    return [tf.identity(v.value) for v in variables]


def keep_where(condition, variables, old_values):
    """Assigns each variable its new value where `condition`, else its old value;
    returns the assignments."""
    return [v.assign(ops.where(condition, v.value, old)) for v, old in zip(variables, old_values)]


class ApplyGradients:
    """Applies the gradients with the model's optimizer; logs the step."""

    def __init__(self, model):
        self.model = model

    def begin(self):
        pass

    def apply(self, grads, variables, step):
        self.model.optimizer.apply(grads, variables)
        return None

    def end(self, finite):
        pass

    def logs(self, x, y, sample_weight, step):
        return self.model._log_step(x, y, sample_weight, step)


class _Wrapper(ApplyGradients):
    """A policy around `inner`: by default each call is the inner policy's."""

    def __init__(self, inner):
        super().__init__(inner.model)
        self.inner = inner

    def begin(self):
        self.inner.begin()

    def apply(self, grads, variables, step):
        return self.inner.apply(grads, variables, step)

    def end(self, finite):
        self.inner.end(finite)

    def logs(self, x, y, sample_weight, step):
        return self.inner.logs(x, y, sample_weight, step)


class FreezeTasks(_Wrapper):
    """Per task, `frozen[k]` (variables) keep their values where the task is not
    `updated` (a (K,) boolean tensor, or a function of the step giving one)."""

    def __init__(self, inner, frozen, updated):
        super().__init__(inner)
        self.frozen, self.updated = frozen, updated

    def begin(self):
        self.old_values = [snapshot(vs) for vs in self.frozen]
        self.inner.begin()

    def apply(self, grads, variables, step):
        finite = self.inner.apply(grads, variables, step)
        updated = self.updated(step)
        for k, (state, old_values) in enumerate(zip(self.frozen, self.old_values)):
            keep_where(updated[k], state, old_values)
        return finite


class SkipNonfinite(_Wrapper):
    """A step whose task losses or gradients are not finite is undone: every variable
    it may change (weights, batch statistics, optimizer and weighting state) keeps
    its value, and the step counts for nothing in the logs."""

    def begin(self):
        model = self.model
        self.protected = unique(list(model.variables) + list(model.optimizer.variables)
                                + list(model.weighting.variables))
        self.old_values = snapshot(self.protected)
        self.inner.begin()

    def apply(self, grads, variables, step):
        self.finite = all_finite(step.active_losses, grads, self.model.optimizer)
        self.inner.apply(grads, variables, step)
        return self.finite

    def end(self, finite):
        self.inner.end(finite)
        keep_where(finite, self.protected, self.old_values)

    def logs(self, x, y, sample_weight, step):
        model = self.model
        model._update_trackers(x, step, self.finite)
        return tf.cond(self.finite, lambda: model.compute_metrics(x, y, step.y_pred, sample_weight),
                       model.get_metrics_result)


class RaiseNonfinite(_Wrapper):
    """A step whose task losses or gradients are not finite raises (an error naming
    the tasks and the step) before the update, with the forward pass's changes
    (batch statistics, seed generator states, the weighting method's state) undone."""

    def begin(self):
        model = self.model
        self.forward_state = unique(list(model.non_trainable_variables)
                                    + list(model.weighting.variables))
        self.old_values = snapshot(self.forward_state)
        self.inner.begin()

    def apply(self, grads, variables, step):
        finite = all_finite(step.active_losses, grads, self.model.optimizer)
        with tf.control_dependencies(keep_where(finite, self.forward_state, self.old_values)):
            checked = [self._assert_finite(step.active_losses, finite)]
        # The update waits for the check (its gradients too, for updates made in a
        # cross-replica context): a graph runs stateful ops on different resources in
        # no fixed order, and a failing step must raise before it changes the model
        # or its optimizers.
        with tf.control_dependencies(checked):
            grads = [None if g is None else tf.identity(g) for g in grads]
            self.inner.apply(grads, variables, step)
        return finite

    def _assert_finite(self, task_losses, finite):
        model = self.model

        def fail(what, tasks):
            return tf.debugging.Assert(False, [
                what, tasks, "at training step", model.optimizer.iterations, "losses",
                task_losses, "(compile(on_nonfinite='skip') skips such steps instead)"],
                summarize=64)

        def fail_loss_or_gradient():
            # Built only on failure: a finite step runs just the condition.
            names = tf.constant(model.task_names)
            bad = ~tf.math.is_finite(task_losses)
            return tf.cond(
                tf.reduce_any(bad),
                lambda: fail("keras_mtl: non-finite loss in task(s)", tf.boolean_mask(names, bad)),
                lambda: fail("keras_mtl: non-finite gradient with finite losses of task(s)", names))

        return tf.cond(finite, tf.no_op, fail_loss_or_gradient)


class RecordNonfinite(_Wrapper):
    """Under XLA: the step records the first non-finite step (its number and task
    losses) in `record` (two variables, see `nonfinite_record`) and carries the
    record's step in its logs (`RECORDED_STEP`), where the train function reads it."""

    def apply(self, grads, variables, step):
        finite = all_finite(step.active_losses, grads, self.model.optimizer)
        at, losses = self.model._nonfinite_record
        first = ops.logical_and(ops.logical_not(finite), at < 0)
        losses.assign(ops.where(first, step.active_losses, losses))
        at.assign(ops.where(first, ops.cast(self.model.optimizer.iterations, "int64"), at))
        self.inner.apply(grads, variables, step)
        return finite

    def logs(self, x, y, sample_weight, step):
        logs = self.inner.logs(x, y, sample_weight, step)
        return {**logs, RECORDED_STEP: ops.cast(self.model._nonfinite_record[0], "float32")}


def nonfinite_record(strategy, num_tasks):
    """Variables (not saved with the model) where an XLA step records the first
    non-finite step: its number (-1 for none) and its task losses."""
    with strategy.scope():
        first_replica = tf.VariableAggregation.ONLY_FIRST_REPLICA
        return (tf.Variable(-1, dtype="int64", trainable=False, aggregation=first_replica),
                tf.Variable(tf.zeros(num_tasks), trainable=False, aggregation=first_replica))


def raise_recorded(model):
    """Raises for the non-finite step in `model`'s record (and clears it)."""
    step, losses = model._nonfinite_record
    at = int(step.numpy())
    if at < 0:
        return
    losses = losses.numpy()
    step.assign(-1)
    raise tf.errors.InvalidArgumentError(None, None, nonfinite_failure(
        model.task_names, at, losses,
        "the XLA-compiled step recorded it and its update was applied"))
