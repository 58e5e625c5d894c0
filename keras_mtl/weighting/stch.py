"""STCH: smooth Tchebycheff scalarisation of the normalised log-losses."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float, check_int
from keras_mtl.weighting.base import Weighting, present_mask
from keras_mtl.weighting.registry import register


@register("stch")
@keras.saving.register_keras_serializable(package="keras_mtl")
class STCH(Weighting):
    """Smooth Tchebycheff scalarisation: a smooth maximum of the task losses, so
    that each step mostly lowers the worst-off task.

    The paper's scalarisation is `mu log sum_k exp(lambda_k (f_k - z_k) / mu)`, a
    smooth approximation of `max_k lambda_k (f_k - z_k)` within `mu log K` of it.
    Its multi-task experiments (the authors' code) take the objectives
    `f_k = log L_k`, the ideal point `z_k = log n_k` with `n` the nadir vector
    (each task's mean training loss over one epoch), and `lambda_k = 1`, times K:

        objective = K mu log sum_k exp(log(L_k / n_k + eps) / mu)

    For the first `warmup_epochs` epochs the objective is `sum_k log(L_k + eps)`
    instead, and the last of them averages the losses into `n`; with
    `warmup_epochs=0` there is no warm-up and `n = 1`. The logged weight of task k
    is the objective's derivative in `L_k`: `K softmax_k / (L_k + eps n_k)`
    (`1 / (L_k + eps)` during the warm-up). An absent task is left out of the sum
    and of the averages. The nadir vector and the epoch count are Keras weights:
    saved in `.keras` files and restored on resume.

    Reference: Lin, Zhang, Yang, Liu, Wang, Zhang, "Smooth Tchebycheff
    Scalarization for Multi-Objective Optimization", ICML 2024.

    Args:
        mu: the smoothing (> 0); smaller is closer to the maximum.
        warmup_epochs: the epochs of `sum_k log L_k` before STCH, the last of
            which measures the nadir vector (the authors' `warmup_epoch=4` is 5:
            their epochs 0 to 4).

    Example: `model.compile(optimizer="adam", weighting=STCH(mu=1.0, warmup_epochs=5))`
    """

    # The authors' floor inside the logarithms.
    loss_epsilon = 1e-20

    def __init__(self, mu=1.0, warmup_epochs=5, **kwargs):
        super().__init__(**kwargs)
        self.mu = check_float("mu", mu, above=0)
        self.warmup_epochs = check_int("warmup_epochs", warmup_epochs, minimum=0)

    def build(self, input_shape):
        super().build(input_shape)

        def state(name, shape):
            return self.add_weight(shape=shape, initializer="zeros", trainable=False,
                                   aggregation="mean", name=name)

        self.loss_sum = state("loss_sum", (self.num_tasks,))
        self.loss_count = state("loss_count", (self.num_tasks,))
        self.epoch_steps = state("epoch_steps", ())
        self.epochs_seen = state("epochs_seen", ())

    def nadir(self):
        """Each task's mean loss over the last warm-up epoch (1 where not measured)."""
        return ops.where(self.loss_count > 0, ops.divide_no_nan(self.loss_sum, self.loss_count), 1.0)

    def combine(self, losses, training=False, present=None):
        mask = present_mask(present, self.num_tasks)
        weights_mask = ops.cast(mask, losses.dtype)
        warming = self.epochs_seen < self.warmup_epochs
        if training:
            averaging = ops.cast(self.epochs_seen == self.warmup_epochs - 1, losses.dtype)
            self.loss_sum.assign_add(averaging * weights_mask * ops.stop_gradient(losses))
            self.loss_count.assign_add(averaging * weights_mask)
            self.epoch_steps.assign_add(1.0)
        nadir = ops.cast(self.nadir(), losses.dtype)
        log_losses = ops.log(losses + self.loss_epsilon)
        warmup_objective = ops.sum(weights_mask * log_losses)
        warmup_weights = weights_mask / (ops.stop_gradient(losses) + self.loss_epsilon)
        scaled = ops.log(losses / nadir + self.loss_epsilon) / self.mu
        # Centred on the largest present term (a constant in the derivative) so
        # that exp cannot overflow for a small mu; absent tasks add exp(-inf) = 0.
        largest = ops.stop_gradient(ops.max(ops.where(mask, scaled, ops.min(scaled))))
        exponentials = weights_mask * ops.exp(ops.where(mask, scaled - largest, 0.0))
        total = ops.sum(exponentials)
        count = ops.sum(weights_mask)
        stch_objective = count * self.mu * (ops.log(ops.where(count > 0, total, 1.0)) + largest)
        stch_weights = (count * ops.stop_gradient(ops.divide_no_nan(exponentials, total))
                        / (ops.stop_gradient(losses) + self.loss_epsilon * nadir))
        objective = ops.where(warming, warmup_objective, stch_objective)
        return objective, ops.where(warming, warmup_weights, stch_weights)

    def task_weights(self, losses, training=False):
        return self.combine(ops.stop_gradient(losses), training=training)[1]

    def on_epoch_end(self):
        # An epoch without training steps changes nothing.
        trained = ops.cast(self.epoch_steps > 0, self.epochs_seen.dtype)
        self.epochs_seen.assign(self.epochs_seen + trained)
        self.epoch_steps.assign(ops.zeros((), self.epoch_steps.dtype))

    def get_config(self):
        config = super().get_config()
        config.update(mu=self.mu, warmup_epochs=self.warmup_epochs)
        return config
