"""The PyTorch trainer: `TorchTrainer(MultiTaskTrainer)`, an eager train step in the
style of Keras' own `TorchTrainer` (`keras/src/backend/torch/trainer.py`).

One batch: Keras' train function calls `train_step`, which routes the batch
(`MultiTaskTrainer._routed`), runs the forward pass and the `StepLosses`, takes the
gradients with `torch.autograd.grad` (`_gradients`: of the combined objective, or
per task, combined by a gradient method in `keras_mtl/backend/common.py`), and hands
them to the step's update policy (`keras_mtl/backend/torch/policies.py`: the
non-finite policy and per-task freezing, wrapped around the optimizer's update).

Gradient methods: in "shared_parameters" mode one backward pass per task
(`retain_graph=True`) gives that task's gradients of every variable; the shared
variables' are combined, the others' summed (a variable that a task's loss does not
reach, such as another task's head, or every variable of a task absent from the
batch, gets no gradient from it: zeros where the method combines them). In
"representation" mode the per-task gradients are of the shared representation, and
the combined one goes back through the trunk in one more pass.

A *scaled* loss is one ready to differentiate: multiplied by the loss scale of mixed
precision (`optimizer.scale_loss`); the weighting methods see per-task gradients
without it (`combine_loss_scaled`).
"""

import keras
import torch
from keras import ops

from keras_mtl.backend.common import combine_loss_scaled
from keras_mtl.backend.torch import policies
from keras_mtl.trainers.trainer import MultiTaskTrainer


def gradients(loss, sources, retain_graph=False):
    """The gradients of `loss` with respect to the tensors `sources`, None for a
    source that `loss` does not reach."""
    if not loss.requires_grad:
        return [None] * len(sources)
    return list(torch.autograd.grad(loss, sources, retain_graph=retain_graph,
                                    allow_unused=True))


def summed(parts):
    """The sum of the tensors among `parts` (None where all are None)."""
    present = [p for p in parts if p is not None]
    if not present:
        return None
    total = present[0]
    for p in present[1:]:
        total = total + p
    return total


class TorchTrainer(MultiTaskTrainer):
    """The PyTorch multi-task trainer (a mixin before `keras.Model`)."""

    def _create_task_activity(self):
        self._set_untracked(_task_activity=keras.Variable(
            ops.ones((len(self.task_names),), keras.config.floatx()), trainable=False,
            name="task_activity"))

    def train_step(self, data):
        x, y, sample_weight = self._routed(data)
        variables = self._optimized_variables()
        policy = policies.update_policy(self)
        policy.begin()
        y_pred, representation = self._forward(x)
        regularization = self._regularization_loss()
        step = self._step_losses(y, y_pred, sample_weight, regularization, training=True)
        # Weights that are a method's variable itself are read before the update.
        step = step._replace(weights=ops.convert_to_tensor(step.weights).detach().clone())
        grads, step, residual = self._gradients(step, regularization, variables,
                                                representation)
        with torch.no_grad():
            policy.update(grads, variables, step,
                          lambda: self._post_step(x, y, sample_weight, step.present))
            return policy.logs(x, y, sample_weight, step, residual)

    def test_step(self, data):
        x, y, sample_weight = self._routed(data)
        y_pred = self(x, training=False)
        step = self._step_losses(y, y_pred, sample_weight, self._regularization_loss(),
                                 training=False)
        return self._evaluation_logs(self._log_step(x, y, sample_weight, step))

    # ------------------------------------------------------------ the step's parts

    def _forward(self, x):
        """`(y_pred, representation)`: the outputs, and the shared representation's
        tensors for a gradient method in "representation" mode (else None)."""
        if self.weighting.gradient_mode == "representation":
            y_pred, representation = self._representation_model()(x, training=True)
            return y_pred, keras.tree.flatten(representation)
        return self(x, training=True), None

    def _scaled(self, loss):
        """`loss` scaled (see the module docstring)."""
        return self.optimizer.scale_loss(loss)

    def _loss_scale(self):
        """The dynamic loss scale of mixed precision, or None."""
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            one = ops.ones((), keras.config.floatx())
            return ops.cast(self.optimizer.scale_loss(one), keras.config.floatx())
        return None

    def _gradients(self, step, regularization, variables, representation):
        """`(gradients, step, residual)`: the scaled gradients of `variables`, the
        step with the task weights that a gradient method's combination used, and
        the method's residual (None when it reports none)."""
        weighting, residual = self.weighting, None
        own = (self._weighting_gradients(step) if weighting.needs_last_shared_gradients
               else {})
        if weighting.gradient_mode is None:
            grads = gradients(self._scaled(step.total), [v.value for v in variables])
        elif weighting.gradient_mode in ("shared_parameters", "representation"):
            grads, weights, residual = self._gradient_method_gradients(
                step, regularization, variables, representation)
            step = step._replace(weights=weights)
        else:
            raise ValueError(
                f"Unknown gradient_mode={weighting.gradient_mode!r} of {weighting.name}.")
        return [own.get(id(v), g) for v, g in zip(variables, grads)], step, residual

    def _weighting_gradients(self, step):
        """GradNorm: the method's own gradients (scaled like every gradient), by
        variable id, from the per-task gradients of the last shared kernel."""
        kernel = self.last_shared_kernel
        rows = [gradients(step.active_losses[k], [kernel.value], retain_graph=True)[0]
                for k in range(len(self.task_names))]
        rows = torch.stack([torch.zeros_like(kernel.value) if r is None else r
                            for r in rows]).reshape(len(rows), -1)
        own = self.weighting.weighting_gradients(step.active_losses, rows, step.present)
        if own is None:
            return {}
        return {id(v): self._scaled(g)
                for v, g in zip(self.weighting.trainable_variables, own)}

    def _gradient_method_gradients(self, step, regularization, variables, representation):
        """Gradients for a weighting method that combines per-task gradients (of the
        shared variables, or of the `representation` tensors); other variables get
        the gradient of the summed task losses, every variable that of the
        regularization losses. Returns `(gradients, task_weights, residual)`."""
        shared_ids = {id(v) for v in self.shared_variables}
        values = [v.value for v in variables]
        shared = [i for i, v in enumerate(variables) if id(v) in shared_ids]
        others = [i for i, v in enumerate(variables) if id(v) not in shared_ids]
        sources = [values[i] for i in shared] if representation is None else representation
        per_task = [gradients(self._scaled(step.active_losses[k]),
                              sources + [values[i] for i in others], retain_graph=True)
                    for k in range(len(self.task_names))]
        blocks = [torch.stack([torch.zeros_like(s) if g is None else g for g in task_grads])
                  for s, task_grads in zip(sources, zip(*per_task))]
        combined, weights, residual = combine_loss_scaled(
            self.weighting, blocks, step.active_losses, step.present, self._loss_scale())
        if representation is not None:
            combined = gradients_through(representation, [values[i] for i in shared],
                                         combined, retain_graph=bool(self.losses))
        grads = [None] * len(variables)
        for i, g in zip(shared, combined):
            grads[i] = g
        for i, task_grads in zip(others, list(zip(*per_task))[len(sources):]):
            grads[i] = summed(task_grads)
        if self.losses:
            grads = [summed([g, r]) for g, r in
                     zip(grads, gradients(self._scaled(regularization), values))]
        return grads, weights, residual

def gradients_through(outputs, sources, output_gradients, retain_graph):
    """The gradients of `sources` given `output_gradients` of `outputs` (tensors
    computed from them): one backward pass."""
    grads = torch.autograd.grad(outputs, sources, grad_outputs=output_gradients,
                                retain_graph=retain_graph, allow_unused=True)
    return [torch.zeros_like(s) if g is None else g for s, g in zip(sources, grads)]
