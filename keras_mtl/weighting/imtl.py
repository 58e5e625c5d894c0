"""IMTL-G: the update whose projections on every task's gradient direction are equal."""

import keras
from keras import ops

from keras_mtl.weighting.base import GradientWeighting, present_mask, unit_gramian
from keras_mtl.weighting.registry import register


_FLOAT32_EPSILON = 1.1920929e-07


@register("imtl")
@keras.saving.register_keras_serializable(package="keras_mtl")
class IMTL(GradientWeighting):
    """Impartial multi-task learning, gradient part (IMTL-G).

    Finds `a` with `sum_k a_k = 1` such that `g = sum_k a_k g_k` has the same
    projection on every unit gradient `u_k = g_k / ||g_k||`. The paper's closed
    form, `a_{2:K} = g_1 U^T (D U^T)^{-1}` with rows `D_k = g_1 - g_k`,
    `U_k = u_1 - u_k`, is the solution of `G G^T a = s n` (`n_k = ||g_k||`, the
    condition `g . g_k = s ||g_k||`). With `G G^T = diag(n) C diag(n)`, `C` the
    cosines of the task gradients, that is `a ~ diag(n)^{-1} C^{-1} 1`: solved in
    this basis, its accuracy depends on the angles between the gradients only, not
    on the ratio of their norms (which squares into the condition of `G G^T`); the
    K x K eigendecomposition runs in float64 where the backend has it (TensorFlow;
    JAX with `jax_enable_x64`), for gradients at small angles. The inverse is a
    pseudo-inverse (by `eigh` of `C`, dropping eigenvalues below
    `K eps max(eig)`): it equals the inverse when the task gradients are linearly
    independent and gives the least-squares answer when they are not (where the
    paper's inverse does not exist). The residual is the spread of the
    projections `g . u_k` relative to `||g||` (0 unless the gradients are linearly
    dependent). Absent tasks get weight 0.

    Degenerate input: a present task whose gradient is exactly zero has no
    direction to project on; it gets weight 0 and the others are solved alone
    (the combination is still scaled by K, all present tasks). Duplicated or
    parallel gradients (a singular `C`) get the pseudo-inverse's answer, the one
    of least norm in the cosine basis, whose projections are equal; exactly
    opposed gradients give `g = 0`, the only vector with equal projections on
    `u` and `-u` in their span (the weights are then 0). Other linearly dependent
    gradients have no exact answer or many (0 in their convex hull makes every
    multiple of one answer, 0 included, an answer): the pseudo-inverse's
    least-squares answer is returned and the residual reports the spread.

    Returns `combined = K g`, i.e. the logged weights are `K a` (they sum to K, the
    number of present tasks), the scale of equal weighting's sum of gradients
    (LibMTL returns `g`, the scale of the mean, and combines it with IMTL-L's
    learned loss scales; this class is IMTL-G alone).

    Reference: Liu, Li, Kuang, Xue, Chen, Yang, Liao, Zhang, "Towards Impartial
    Multi-task Learning", ICLR 2021.

    Args:
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting="imtl")`
    """

    def gramian_weights(self, gram, losses, present=None):
        k = self.num_tasks
        norms, cosines = unit_gramian(gram)
        present = present_mask(present, k)
        usable = present & (norms > 0)
        mask = ops.cast(usable, "float64")
        system = ops.cast(cosines, "float64") * mask[:, None] * mask[None, :] + ops.diag(1.0 - mask)
        eigenvalues, eigenvectors = ops.eigh(system)
        kept = eigenvalues > ops.max(eigenvalues) * k * _FLOAT32_EPSILON
        inverse = ops.where(kept, 1.0 / ops.where(kept, eigenvalues, 1.0), 0.0)
        scaled = ops.matmul(eigenvectors, inverse * ops.matmul(ops.transpose(eigenvectors), mask)) * mask
        mask = ops.cast(mask, keras.config.floatx())
        solution = ops.divide_no_nan(ops.cast(scaled, keras.config.floatx()), norms)
        weights = ops.divide_no_nan(solution, ops.sum(solution))
        projections = ops.divide_no_nan(ops.matmul(gram, weights), norms)
        length = ops.sqrt(ops.maximum(ops.sum(weights * ops.matmul(gram, weights)), 0.0))
        spread = (ops.max(ops.where(usable, projections, -float("inf")))
                  - ops.min(ops.where(usable, projections, float("inf"))))
        count = ops.sum(ops.cast(present, keras.config.floatx()))
        return count * weights, ops.divide_no_nan(spread, length)
