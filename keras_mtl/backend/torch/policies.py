"""The PyTorch step's update policies: wrappers around the optimizer's update.

As on TensorFlow (`keras_mtl/backend/tensorflow/policies.py`), each policy is an
object made for one step, with the state it needs, in the spirit of optax's
`apply_if_finite` and Keras' `LossScaleOptimizer`: `ApplyGradients` applies the
gradients (`on_nonfinite="ignore"`), and each wrapper adds one behaviour around the
policy it wraps. PyTorch runs the step eagerly, so a wrapper decides in Python
whether the policy it wraps runs at all:

- `FreezeTasks`: a task that takes no part in the step (absent from the batch under
  `freeze_absent_tasks`, or inactive in `task_activity`) keeps its variables and its
  own optimizer's state.
- `SkipNonfinite` (`on_nonfinite="skip"`): a step with a non-finite task loss or
  gradient runs no update and undoes the forward pass's changes (batch statistics,
  seed generator states, the weighting method's state); it counts for nothing in
  the logs.
- `RaiseNonfinite` (`on_nonfinite="raise"`): such a step undoes the forward pass's
  changes and raises, naming the tasks and the step.

The step calls, in order: `begin()` before the forward pass, `update(grads,
variables, step, post_step)` (the optimizer's update, then `post_step()`), and
`logs(x, y, sample_weight, step, residual)` for its logs.
"""

from keras import ops

from keras_mtl.backend.common import all_finite, nonfinite_failure, unique


def snapshot(variables):
    """Copies of the variables' current values."""
    return [v.value.detach().clone() for v in variables]


def restore(variables, values):
    """Writes `values` (a `snapshot`) back into `variables`."""
    for v, value in zip(variables, values):
        v.value.data.copy_(value)


class ApplyGradients:
    """Applies the gradients with the model's optimizer; logs the step."""

    def __init__(self, model):
        self.model = model

    def begin(self):
        pass

    def update(self, grads, variables, step, post_step):
        self.model.optimizer.apply(grads, variables)
        post_step()

    def logs(self, x, y, sample_weight, step, residual):
        return self.model._log_step(x, y, sample_weight, step, residual)


class _Wrapper(ApplyGradients):
    """A policy around `inner`: by default each call is the inner policy's."""

    def __init__(self, inner):
        super().__init__(inner.model)
        self.inner = inner

    def begin(self):
        self.inner.begin()

    def update(self, grads, variables, step, post_step):
        self.inner.update(grads, variables, step, post_step)

    def logs(self, x, y, sample_weight, step, residual):
        return self.inner.logs(x, y, sample_weight, step, residual)


class FreezeTasks(_Wrapper):
    """Per task, `frozen[k]` (variables) keep their values when the task is not
    `updated(step)` (a (K,) boolean tensor)."""

    def __init__(self, inner, frozen, updated):
        super().__init__(inner)
        self.frozen, self.updated = frozen, updated

    def update(self, grads, variables, step, post_step):
        updated = self.updated(step).tolist()
        held = [(vs, snapshot(vs)) for vs, u in zip(self.frozen, updated) if not u]
        self.inner.update(grads, variables, step, post_step)
        for vs, values in held:
            restore(vs, values)


class _ForwardStateGuard(_Wrapper):
    """Snapshots, before the forward pass, the state it may change: the network's
    non-trainable variables and the weighting method's variables."""

    def begin(self):
        model = self.model
        self.forward_state = unique(list(model.non_trainable_variables)
                                    + list(model.weighting.variables))
        self.old_values = snapshot(self.forward_state)
        self.inner.begin()

    def _finite(self, grads, step):
        return bool(all_finite(step.active_losses, grads, self.model.optimizer))


class SkipNonfinite(_ForwardStateGuard):
    """A non-finite step runs no update, undoes its forward pass's changes and counts
    for nothing in the logs."""

    def update(self, grads, variables, step, post_step):
        self.finite = self._finite(grads, step)
        if self.finite:
            self.inner.update(grads, variables, step, post_step)
        else:
            restore(self.forward_state, self.old_values)

    def logs(self, x, y, sample_weight, step, residual):
        model = self.model
        model._update_trackers(x, step, ops.convert_to_tensor(self.finite))
        if not self.finite:
            return model.get_metrics_result()
        if residual is not None:
            model._update_residual(residual, step.weights)
        return model.compute_metrics(x, y, step.y_pred, sample_weight)


class RaiseNonfinite(_ForwardStateGuard):
    """A non-finite step undoes its forward pass's changes and raises before the
    update: no variable or optimizer state changes."""

    def update(self, grads, variables, step, post_step):
        if not self._finite(grads, step):
            restore(self.forward_state, self.old_values)
            model = self.model
            raise FloatingPointError(nonfinite_failure(
                model.task_names, int(model.optimizer.iterations.numpy()),
                step.active_losses.detach().cpu().numpy(), "the step changed no variable"))
        self.inner.update(grads, variables, step, post_step)


def update_policy(model):
    """The step's update policy: the optimizer's update, wrapped in per-task freezing
    (`_frozen_when_absent`) and the non-finite policy of `model.on_nonfinite`."""
    policy = ApplyGradients(model)
    frozen = model._frozen_when_absent()
    if frozen:
        updated = ((lambda step: step.present) if model.freeze_absent_tasks
                   else (lambda step: model._task_activity.value > 0))
        policy = FreezeTasks(policy, frozen, updated)
    wrapper = {"skip": SkipNonfinite, "raise": RaiseNonfinite}.get(model.on_nonfinite)
    return wrapper(policy) if wrapper else policy

