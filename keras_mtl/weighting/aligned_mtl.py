"""Aligned-MTL: align the task gradients' principal components before summing."""

import keras
from keras import ops

from keras_mtl.weighting.base import GradientWeighting
from keras_mtl.weighting.registry import register


_FLOAT32_EPSILON = 1.1920929e-07


@register("aligned_mtl")
@keras.saving.register_keras_serializable(package="keras_mtl")
class AlignedMTL(GradientWeighting):
    """Aligned-MTL: make the system of task gradients well conditioned, then sum.

    With the K x K Gramian `M = G G^T = V diag(lambda) V^T`, the aligned gradients
    are `B G` with `B = sqrt(lambda_min) V diag(lambda)^(-1/2) V^T` (restricted to
    the eigenvalues above `K eps lambda_max`, i.e. to the rank of `G`): their
    singular values all equal the smallest one of `G`, so no task dominates the
    update. `combined = sum_k (B G)_k = (B 1)^T G`; the logged weights are the
    effective ones, `B 1`. This is the sum convention of equal weighting, as in the
    authors' code and LibMTL (for orthogonal gradients of equal norm all weights
    are 1). On the shared representation's gradients this is Aligned-MTL-UB.

    Reference: Senushkin, Patakin, Kuznetsov, Konushin, "Independent Component
    Alignment for Multi-Task Learning", CVPR 2023.

    Args:
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting="aligned_mtl")`
    """

    def combine_gradients(self, grads, losses):
        matrix = ops.cast(grads, "float32")
        gram = ops.matmul(matrix, ops.transpose(matrix))
        eigenvalues, eigenvectors = ops.eigh(gram)
        kept = eigenvalues > ops.max(eigenvalues) * self.num_tasks * _FLOAT32_EPSILON
        safe = ops.where(kept, eigenvalues, 1.0)
        smallest = ops.min(ops.where(kept, eigenvalues, ops.max(eigenvalues)))
        scales = ops.where(kept, ops.sqrt(smallest / safe), 0.0)
        weights = ops.matmul(eigenvectors, scales * ops.sum(eigenvectors, axis=0))
        combined = ops.matmul(weights[None, :], matrix)[0]
        return ops.cast(combined, grads.dtype), weights
