"""MGDA-UB: the minimum-norm point of the convex hull of the task gradients."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float, check_int
from keras_mtl.weighting.base import GradientWeighting, present_mask
from keras_mtl.weighting.min_norm import min_norm_weights
from keras_mtl.weighting.registry import register


_NORMALIZATIONS = ("none", "l2", "loss", "loss+")


@register("mgda")
@keras.saving.register_keras_serializable(package="keras_mtl")
class MGDA(GradientWeighting):
    """MGDA: descend along the minimum-norm element of the convex hull of the task
    gradients, a direction that decreases every task loss (or a Pareto-stationary
    point when it is zero).

    With `M = G G^T` the K x K Gramian of the per-task gradients (rows of `G`
    divided by the normalisers below), `a` minimises `a^T M a` on the simplex,
    found in-graph by Wolfe's min-norm-point algorithm in the basis of unit
    gradients (`keras_mtl.weighting.min_norm`): exact, whatever the ratio of the
    gradients' norms. The residual is the largest violation of its optimality
    conditions, as a cosine. Absent tasks get weight 0.

    The default works on the shared parameters' gradients (MGDA); with
    `gradient_mode="representation"` it works on the gradients of the shared
    representation, which is Sener and Koltun's MGDA-UB (their recommended,
    cheaper variant: one backward pass through the trunk).

    Returns `combined = K sum_k a_k g_k` on the raw gradients `g_k`, i.e. the
    logged weights are `K a` (they sum to K, the number of present tasks): K times
    the min-norm point, so that
    the step has the scale of equal weighting's sum of gradients (LibMTL returns the
    min-norm point itself, `sum_k a_k g_k`). As in the authors' code, the
    normaliser only shapes `a`; LibMTL applies `a` to the normalised gradients.

    Reference: Sener, Koltun, "Multi-Task Learning as Multi-Objective
    Optimization", NeurIPS 2018.

    Args:
        normalization: gradient normaliser before solving: "none", "l2" (the
            gradient's norm), "loss" (the task loss) or "loss+" (loss times norm).
        max_iterations: a cap on the solver's active-set steps (None: `10 K + 10`,
            more than it needs in exact arithmetic).
        tolerance: the optimality test's bound, a cosine (scale-free).
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting=MGDA(normalization="loss+"))`
    """

    def __init__(self, normalization="none", max_iterations=None, tolerance=1e-6,
                 gradient_mode="shared_parameters", **kwargs):
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        if normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {_NORMALIZATIONS}. Received: normalization={normalization!r}"
            )
        self.normalization = normalization
        self.max_iterations = (None if max_iterations is None
                               else check_int("max_iterations", max_iterations, minimum=1))
        self.tolerance = check_float("tolerance", tolerance, minimum=0)

    def _normalizers(self, gram, losses):
        norms = ops.sqrt(ops.maximum(ops.diagonal(gram), 0.0))
        if self.normalization == "l2":
            return norms
        if self.normalization == "loss":
            return losses
        if self.normalization == "loss+":
            return losses * norms
        return ops.ones_like(losses)

    def gramian_weights(self, gram, losses, present=None):
        normalizers = self._normalizers(gram, ops.cast(ops.stop_gradient(losses), keras.config.floatx()))
        # A zero normaliser (zero gradient or loss) keeps that task's gradient as is.
        inverse = ops.where(normalizers > 0, 1.0 / ops.where(normalizers > 0, normalizers, 1.0), 1.0)
        normalized_gram = gram * inverse[:, None] * inverse[None, :]
        present = present_mask(present, self.num_tasks)
        weights, residual = min_norm_weights(normalized_gram, present, self.tolerance, self.max_iterations)
        return ops.sum(ops.cast(present, keras.config.floatx())) * weights, residual

    def get_config(self):
        config = super().get_config()
        config.update(normalization=self.normalization, max_iterations=self.max_iterations,
                      tolerance=self.tolerance)
        return config
