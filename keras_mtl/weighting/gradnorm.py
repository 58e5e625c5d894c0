"""GradNorm: weights that balance the tasks' gradient norms."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float
from keras_mtl.weighting.base import Weighting, present_mask
from keras_mtl.weighting.registry import register


@register("gradnorm")
@keras.saving.register_keras_serializable(package="keras_mtl")
class GradNorm(Weighting):
    """GradNorm: learned weights that give tasks gradient norms in line with their
    relative training rates.

    `G_k = ||grad_W (w_k L_k)||` on the last shared kernel `W`;
    `r_k = Ltilde_k / mean(Ltilde)` with `Ltilde_k = L_k(t) / L_k(0)` (`L_k(0)`,
    the first training step's loss, is kept in a variable). The weights follow the
    gradient of `sum_k |G_k - mean(G) r_k^alpha|` (targets held constant), applied by
    the model's `weighting_optimizer`; after each update they are clipped to be
    positive and renormalised to sum to K. The network is trained on
    `sum_k w_k L_k`.

    Reference: Chen, Badrinarayanan, Lee, Rabinovich, "GradNorm: Gradient
    Normalization for Adaptive Loss Balancing in Deep Multitask Networks",
    ICML 2018.

    Args:
        alpha: the restoring force (>= 0); 0 pulls all gradient norms to the
            same value, larger values favour tasks that train slowly.
        min_weight: the floor applied to each weight before renormalisation.

    Example: `model.compile(optimizer="adam", weighting=GradNorm(alpha=1.5),
    weighting_optimizer=keras.optimizers.Adam(0.025))`
    """

    needs_last_shared_gradients = True

    def __init__(self, alpha=1.5, min_weight=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.alpha = check_float("alpha", alpha, minimum=0)
        self.min_weight = check_float("min_weight", min_weight, above=0)

    def build(self, input_shape):
        super().build(input_shape)
        k = self.num_tasks
        self.loss_weights = self.add_weight(shape=(k,), initializer="ones", name="loss_weights",
                                            constraint=self._renormalise)
        self.initial_losses = self.add_weight(shape=(k,), initializer="zeros", trainable=False,
                                              aggregation="mean", name="initial_losses")
        self.initialised = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                           aggregation="mean", name="initialised")

    def _renormalise(self, weights):
        weights = ops.maximum(weights, self.min_weight)
        return self.num_tasks * weights / ops.sum(weights)

    def task_weights(self, losses, training=False):
        return ops.convert_to_tensor(self.loss_weights)

    def weighting_gradients(self, losses, last_shared_gradients, present=None):
        """The gradient of the GradNorm loss w.r.t. the weights, in closed form:
        `d/dw_k sum_i |G_i - target_i| = sign(G_k - target_k) ||grad_W L_k||`.

        Over the present tasks only: a task's initial loss is its loss in the first
        batch that has its labels, the means are over the present tasks, and an
        absent task's weight gets no gradient."""
        present = present_mask(present, self.num_tasks)
        mask = ops.cast(present, keras.config.floatx())
        count = ops.maximum(ops.sum(mask), 1.0)
        losses = ops.stop_gradient(losses)
        first = present & (self.initial_losses <= 0)
        self.initial_losses.assign(ops.where(first, losses, ops.convert_to_tensor(self.initial_losses)))
        self.initialised.assign(1.0)
        norms = ops.norm(ops.stop_gradient(last_shared_gradients), axis=1) * mask
        weights = ops.convert_to_tensor(self.loss_weights)
        grad_norms = weights * norms
        ratios = ops.divide_no_nan(losses, self.initial_losses) * mask
        rates = ops.divide_no_nan(ratios, ops.sum(ratios) / count)
        targets = ops.sum(grad_norms) / count * rates ** self.alpha
        return [ops.sign(grad_norms - targets) * norms]

    def get_config(self):
        config = super().get_config()
        config.update(alpha=self.alpha, min_weight=self.min_weight)
        return config
