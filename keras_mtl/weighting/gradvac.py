"""GradVac: raise each pair of task gradients to its usual cosine similarity."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float, check_seed
from keras_mtl.weighting.base import GradientWeighting, present_mask
from keras_mtl.weighting.registry import register


@register("gradvac")
@keras.saving.register_keras_serializable(package="keras_mtl")
class GradVac(GradientWeighting):
    """Gradient Vaccine: where two tasks' gradients agree less than usual, mix the
    other task's gradient in until their cosine reaches the usual value.

    For each task i, `p_i` starts as `g_i`; for every other task j in a random
    order, with `phi = cos(p_i, g_j)` and the target `t = phi_hat_ij`: if
    `phi < t`, `p_i += ||p_i|| (t sqrt(1 - phi^2) - phi sqrt(1 - t^2)) /
    (||g_j|| sqrt(1 - t^2)) g_j`; then `phi_hat_ij <- (1 - beta) phi_hat_ij +
    beta phi` (the paper's Algorithm 1 updates the target at every visit; LibMTL
    only when `phi < t`). The targets start at 0 (PCGrad's) and live in a
    non-trainable K x K variable. `combined = sum_i p_i`, the sum convention of
    equal weighting, as in the paper and LibMTL.

    As in PCGrad, each `p_i` is a combination `sum_j C_ij g_j`, so the surgery runs
    on the K x K Gramian; the logged weights are the effective ones `sum_i C_ij`
    (LibMTL logs ones). One similarity per task pair over all shared parameters
    (LibMTL's default granularity; the paper also has per-layer targets).

    Reference: Wang, Tsvetkov, Firat, Cao, "Gradient Vaccine: Investigating and
    Improving Multi-task Optimization in Massively Multilingual Models", ICLR 2021.

    Args:
        beta: the targets' moving-average rate, in [0, 1] (the paper's 1e-2;
            LibMTL defaults to 0.5).
        seed: an int for reproducible task orders, or None.
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting=GradVac(beta=0.01))`
    """

    def __init__(self, beta=0.01, seed=None, gradient_mode="shared_parameters", **kwargs):
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        self.beta = check_float("beta", beta, minimum=0, maximum=1)
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def build(self, input_shape):
        super().build(input_shape)
        k = self.num_tasks
        self.targets = self.add_weight(shape=(k, k), initializer="zeros", trainable=False,
                                       aggregation="mean", name="targets")

    def gramian_weights(self, gram, losses, present=None):
        k = self.num_tasks
        mask = ops.cast(present_mask(present, k), keras.config.floatx())
        other_norms = ops.sqrt(ops.maximum(ops.diagonal(gram), 0.0))
        orders = ops.argsort(keras.random.uniform((k, k), seed=self.seed_generator), axis=-1)
        targets = ops.convert_to_tensor(self.targets)
        coefficients = ops.eye(k)
        for position in range(k):
            # Row i looks at task orders[i, position]; all rows in one go.
            other = ops.one_hot(orders[:, position], k)
            visited = 1.0 - ops.sum(other * ops.eye(k), axis=1)
            projected = ops.matmul(coefficients, gram)
            norms = ops.sqrt(ops.maximum(ops.sum(projected * coefficients, axis=1), 0.0))
            norm_j = ops.matmul(other, other_norms)
            cosine = ops.divide_no_nan(ops.sum(projected * other, axis=1), norms * norm_j)
            target = ops.sum(targets * other, axis=1)
            sine = ops.sqrt(ops.maximum(1.0 - cosine * cosine, 0.0))
            target_sine = ops.sqrt(ops.maximum(1.0 - target * target, 0.0))
            scale = ops.divide_no_nan(norms * (target * sine - cosine * target_sine), norm_j * target_sine)
            scale = ops.where(cosine < target, scale, 0.0) * visited
            coefficients = coefficients + scale[:, None] * other
            # The usual cosine of a pair with an absent task stays as it was.
            change = self.beta * (cosine - target) * visited * mask * ops.matmul(other, mask)
            targets = targets + change[:, None] * other
        self.targets.assign(targets)
        weights = ops.sum(coefficients, axis=0) * mask
        return weights, ops.zeros(())

    def get_config(self):
        config = super().get_config()
        config.update(beta=self.beta, seed=self.seed)
        return config
