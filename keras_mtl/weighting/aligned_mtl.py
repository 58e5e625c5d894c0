"""Aligned-MTL: align the task gradients' principal components before summing."""

import keras
from keras import ops

from keras_mtl.weighting.base import GradientWeighting, present_mask, unit_gramian
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

    The condition number of `M` is that of `G` squared (1e8 for task gradients
    whose norms differ 1e4 times), beyond float32: the K x K eigendecomposition
    runs in float64 where the backend has it (TensorFlow; JAX with
    `jax_enable_x64`), on the float32 Gramian, whose entries are accurate relative
    to the gradients' norms; that keeps the weights accurate to about 1e-7 times
    the condition number of the gradients' cosine matrix. The rank of `G` (for
    the authors' cutoff, `K eps lambda_max`) is read from the cosine matrix, where
    the cutoff does not mistake a small gradient for a missing one. Absent tasks get
    weight 0 (the alignment is over the present tasks).

    Reference: Senushkin, Patakin, Kuznetsov, Konushin, "Independent Component
    Alignment for Multi-Task Learning", CVPR 2023.

    Args:
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting="aligned_mtl")`
    """

    def gramian_weights(self, gram, losses, present=None):
        k = self.num_tasks
        mask = ops.cast(present_mask(present, k), "float64")
        gram = ops.cast(gram, "float64") * mask[:, None] * mask[None, :]
        # The rank of G is that of its cosine matrix, where a float32 cutoff is
        # meaningful whatever the norms; the largest eigenvalues of M are kept.
        cosine_eigenvalues = ops.eigh(unit_gramian(gram)[1])[0]
        rank = ops.sum(ops.cast(cosine_eigenvalues > ops.max(cosine_eigenvalues) * k * _FLOAT32_EPSILON,
                                "int32"))
        eigenvalues, eigenvectors = ops.eigh(gram)
        kept = ops.arange(k, dtype="int32") >= k - rank
        safe = ops.where(kept, eigenvalues, 1.0)
        smallest = ops.min(ops.where(kept, eigenvalues, ops.max(eigenvalues)))
        scales = ops.where(kept, ops.sqrt(smallest / safe), 0.0)
        weights = ops.matmul(eigenvectors, scales * ops.matmul(ops.transpose(eigenvectors), mask))
        return ops.cast(weights * mask, keras.config.floatx()), ops.zeros(())
