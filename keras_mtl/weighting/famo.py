"""Fast Adaptive Multitask Optimization (FAMO)."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float
from keras_mtl.weighting.base import Weighting, present_mask
from keras_mtl.weighting.registry import register


@register("famo")
@keras.saving.register_keras_serializable(package="keras_mtl")
class FAMO(Weighting):
    """FAMO: task weights that make all log-losses fall at a similar rate, in O(1)
    extra memory and time per step.

    With task logits `xi` and `z = softmax(xi)`, the network is trained on
    `sum_k z_k log(L_k + eps) / c`, `c = sum_k z_k / (L_k + eps)` held constant,
    i.e. with weights `z_k / (c (L_k + eps))` (they sum to 1) on the task gradients.
    After the parameter update the model recomputes the batch's losses `L'` and
    `post_step` moves the logits along `-(dz/dxi)^T delta`, `delta = log(L + eps) -
    log(L' + eps)`, with Adam and L2 weight decay on `xi` (as the authors' code),
    whose state lives in this layer.

    Reference: Liu, Feng, Stone, Liu, "FAMO: Fast Adaptive Multitask Optimization",
    NeurIPS 2023.

    Args:
        learning_rate: Adam learning rate of the logits.
        weight_decay: L2 regularisation coefficient of the logits (the paper's gamma).
        beta_1, beta_2, epsilon: Adam's moment decays and epsilon.

    Example: `model.compile(optimizer="adam", weighting=FAMO(learning_rate=0.025))`
    """

    needs_post_step_losses = True
    # Keeps log() and 1/L finite for losses that reach 0 (the authors' value).
    loss_epsilon = 1e-8

    def __init__(self, learning_rate=0.025, weight_decay=0.01, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.learning_rate = check_float("learning_rate", learning_rate, above=0)
        self.weight_decay = check_float("weight_decay", weight_decay, minimum=0)
        self.beta_1 = check_float("beta_1", beta_1, minimum=0, below=1)
        self.beta_2 = check_float("beta_2", beta_2, minimum=0, below=1)
        self.epsilon = check_float("epsilon", epsilon, above=0)

    def build(self, input_shape):
        super().build(input_shape)
        k = self.num_tasks

        def state(name, shape):
            return self.add_weight(shape=shape, initializer="zeros", trainable=False,
                                   aggregation="mean", name=name)

        self.logits = state("logits", (k,))
        self.previous_losses = state("previous_losses", (k,))
        self.first_moment = state("first_moment", (k,))
        self.second_moment = state("second_moment", (k,))
        self.updates = state("updates", ())

    def _mixture(self, losses, present=None):
        """Returns `(z, c)`: the softmax of the present tasks' logits (0 for absent
        tasks) and `sum_k z_k / (L_k + eps)`."""
        present = present_mask(present, self.num_tasks)
        z = ops.softmax(ops.where(present, ops.convert_to_tensor(self.logits), -float("inf")))
        return z, ops.sum(z / (ops.stop_gradient(losses) + self.loss_epsilon))

    def task_weights(self, losses, training=False, present=None):
        z, c = self._mixture(losses, present)
        return z / (c * (ops.stop_gradient(losses) + self.loss_epsilon))

    def combine(self, losses, training=False, present=None):
        if training:
            self.previous_losses.assign(ops.stop_gradient(losses))
        z, c = self._mixture(losses, present)
        objective = ops.sum(z * ops.log(losses + self.loss_epsilon)) / c
        return objective, self.task_weights(losses, training=training, present=present)

    def post_step(self, new_losses, present=None):
        """One Adam step on the logits of the present tasks (absent tasks' logits and
        moments stay as they were)."""
        present = present_mask(present, self.num_tasks)
        delta = (ops.log(self.previous_losses + self.loss_epsilon)
                 - ops.log(ops.stop_gradient(new_losses) + self.loss_epsilon))
        delta = ops.where(present, delta, 0.0)
        z = ops.softmax(ops.where(present, ops.convert_to_tensor(self.logits), -float("inf")))
        # (dz/dxi)^T delta for the softmax Jacobian diag(z) - z z^T.
        grad = z * (delta - ops.sum(z * delta)) + self.weight_decay * self.logits
        step = self.updates + 1.0
        m = self.beta_1 * self.first_moment + (1 - self.beta_1) * grad
        v = self.beta_2 * self.second_moment + (1 - self.beta_2) * grad * grad
        m_hat = m / (1 - self.beta_1 ** step)
        v_hat = v / (1 - self.beta_2 ** step)
        logits = self.logits - self.learning_rate * m_hat / (ops.sqrt(v_hat) + self.epsilon)
        self.logits.assign(ops.where(present, logits, ops.convert_to_tensor(self.logits)))
        self.first_moment.assign(ops.where(present, m, ops.convert_to_tensor(self.first_moment)))
        self.second_moment.assign(ops.where(present, v, ops.convert_to_tensor(self.second_moment)))
        self.updates.assign(step)

    def get_config(self):
        config = super().get_config()
        config.update(learning_rate=self.learning_rate, weight_decay=self.weight_decay,
                      beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config
