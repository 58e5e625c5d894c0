"""PCGrad: project each task gradient off the gradients it conflicts with."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_seed
from keras_mtl.weighting.base import GradientWeighting, present_mask
from keras_mtl.weighting.registry import register


@register("pcgrad")
@keras.saving.register_keras_serializable(package="keras_mtl")
class PCGrad(GradientWeighting):
    """Projecting Conflicting Gradients ("gradient surgery").

    For each task i, `p_i` starts as `g_i`; for every task j in a random order,
    if `p_i . g_j < 0` then `p_i -= (p_i . g_j) / ||g_j||^2 g_j`. The update is
    `combined = sum_i p_i`, the sum convention of equal weighting, as in the paper
    and LibMTL.

    Every `p_i` is a combination `sum_j C_ij g_j` of the original gradients, so the
    surgery runs on the K x K Gramian `G G^T` alone (`p_i . g_j = (C G G^T)_ij`);
    the K x P matrix is touched twice, for the Gramian and for
    `combined = (sum_i C_i) G`. The logged weights are these effective weights
    `sum_i C_ij` (all 1 when no gradients conflict). The random orders (one
    permutation per task, each step) come from a `keras.random.SeedGenerator`.

    Reference: Yu, Kumar, Gupta, Levine, Hausman, Finn, "Gradient Surgery for
    Multi-Task Learning", NeurIPS 2020.

    Args:
        seed: an int for reproducible task orders, or None.
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting=PCGrad(seed=0))`
    """

    def __init__(self, seed=None, gradient_mode="shared_parameters", **kwargs):
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        self.seed = check_seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def gramian_weights(self, gram, losses, present=None):
        k = self.num_tasks
        squared_norms = ops.diagonal(gram)
        orders = ops.argsort(keras.random.uniform((k, k), seed=self.seed_generator), axis=-1)
        coefficients = ops.eye(k)
        for position in range(k):
            # Row i projects off task orders[i, position]; all rows in one go.
            other = ops.one_hot(orders[:, position], k)
            products = ops.sum(ops.matmul(coefficients, gram) * other, axis=1)
            norms = ops.matmul(other, squared_norms)
            scale = ops.divide_no_nan(ops.minimum(products, 0.0), norms)
            coefficients = coefficients - scale[:, None] * other
        # An absent task's gradient is zero: it projects nothing and adds nothing.
        weights = ops.sum(coefficients, axis=0) * ops.cast(present_mask(present, k), keras.config.floatx())
        return weights, ops.zeros(())

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config
