"""ConFIG: the conflict-free direction of equal cosines with every task gradient."""

import keras
import numpy as np
from keras import ops

from keras_mtl.weighting.base import GradientWeighting, present_mask, unit_gramian
from keras_mtl.weighting.registry import register


@register("config")
@keras.saving.register_keras_serializable(package="keras_mtl")
class ConFIG(GradientWeighting):
    """ConFIG (conflict-free inverse gradients): update along the direction that makes
    the same angle with every task gradient, with the length of the summed gradients'
    projections on it.

    With `u_k = g_k / ||g_k||`, the paper's direction is `g_u = U^+ 1 / ||U^+ 1||`
    (`U` the K x P matrix of unit gradients, `^+` the pseudo-inverse), and the update
    `combined = (sum_k g_k . g_u) g_u` (its equation 2). In terms of the cosine matrix
    `C = U U^T`: `U^+ 1 = U^T a` with `a = C^+ 1`, so `combined = sum_k w_k g_k` with
    `w_k = (sum_i ||g_i|| (C a)_i) / (a^T C a) a_k / ||g_k||`, a function of the Gramian
    alone. `C^+` drops the eigenvalues below `K eps lambda_max` (`eps` that of the
    Gramian's dtype): the rank of `U` as the Gramian's rounding resolves it. On the
    scale of the summed gradients, as the paper (and TorchJD's `ConFIG()`). A zero
    gradient and an absent task get weight 0.

    Reference: Liu, Qiu, Thuerey, "ConFIG: Towards Conflict-free Training of Physics
    Informed Neural Networks", ICLR 2025 (arXiv:2408.11104).

    Args:
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting="config")`
    """

    def gramian_weights(self, gram, losses, present=None):
        k = self.num_tasks
        epsilon = float(np.finfo(keras.backend.standardize_dtype(gram.dtype)).eps)
        mask = ops.cast(present_mask(present, k), "float64")
        gram = ops.cast(gram, "float64") * mask[:, None] * mask[None, :]
        norms, cosines = unit_gramian(gram)
        values, vectors = ops.eigh(cosines)
        kept = values > k * epsilon * ops.max(values)
        inverse = ops.where(kept, 1.0 / ops.where(kept, values, 1.0), 0.0)
        on_units = ops.matmul(vectors, inverse * ops.matmul(ops.ones((k,), "float64"), vectors))
        products = ops.matmul(cosines, on_units)  # u_k . U^T a
        length = ops.divide_no_nan(ops.sum(norms * products), ops.sum(on_units * products))
        weights = length * ops.divide_no_nan(on_units, norms)
        return ops.cast(weights, keras.config.floatx()), ops.zeros(())
