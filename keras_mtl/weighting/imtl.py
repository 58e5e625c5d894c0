"""IMTL-G: the update whose projections on every task's gradient direction are equal."""

import keras
from keras import ops

from keras_mtl.weighting.base import GradientWeighting
from keras_mtl.weighting.registry import register


_FLOAT32_EPSILON = 1.1920929e-07


@register("imtl")
@keras.saving.register_keras_serializable(package="keras_mtl")
class IMTL(GradientWeighting):
    """Impartial multi-task learning, gradient part (IMTL-G).

    Finds `a` with `sum_k a_k = 1` such that `g = sum_k a_k g_k` has the same
    projection on every unit gradient `u_k = g_k / ||g_k||`. The paper's closed
    form, `a_{2:K} = g_1 U^T (D U^T)^{-1}` with rows `D_k = g_1 - g_k`,
    `U_k = u_1 - u_k`, is the solution of `M a = s n` with `M = G G^T` and
    `n_k = ||g_k||` (the condition `g . g_k = s ||g_k||`), so `a` is computed from the
    K x K Gramian as `M^+ n / sum(M^+ n)`. The pseudo-inverse (by `eigh`, dropping
    eigenvalues below `K eps max(eig)`) equals the inverse when the task gradients
    are linearly independent, and gives the least-squares answer when they are not
    (where the paper's inverse does not exist).

    Returns `combined = K g`, i.e. the logged weights are `K a` (they sum to K), the
    scale of equal weighting's sum of gradients (LibMTL returns `g`, the scale of
    the mean, and combines it with IMTL-L's learned loss scales; this class is
    IMTL-G alone).

    Reference: Liu, Li, Kuang, Xue, Chen, Yang, Liao, Zhang, "Towards Impartial
    Multi-task Learning", ICLR 2021.

    Args:
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting="imtl")`
    """

    def combine_gradients(self, grads, losses):
        k = self.num_tasks
        matrix = ops.cast(grads, "float32")
        gram = ops.matmul(matrix, ops.transpose(matrix))
        norms = ops.sqrt(ops.maximum(ops.diagonal(gram), 0.0))
        eigenvalues, eigenvectors = ops.eigh(gram)
        cutoff = ops.max(eigenvalues) * k * _FLOAT32_EPSILON
        kept = eigenvalues > cutoff
        inverse = ops.where(kept, 1.0 / ops.where(kept, eigenvalues, 1.0), 0.0)
        solution = ops.matmul(eigenvectors, inverse * ops.matmul(ops.transpose(eigenvectors), norms))
        weights = k * ops.divide_no_nan(solution, ops.sum(solution))
        combined = ops.matmul(weights[None, :], matrix)[0]
        return ops.cast(combined, grads.dtype), weights
