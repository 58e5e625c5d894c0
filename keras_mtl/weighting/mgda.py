"""MGDA-UB: the minimum-norm point of the convex hull of the task gradients."""

import keras
from keras import ops

from keras_mtl.weighting.base import GradientWeighting
from keras_mtl.weighting.registry import register


_NORMALIZATIONS = ("none", "l2", "loss", "loss+")


def min_norm_weights(gram, max_iterations, tolerance):
    """The weights `a` on the simplex minimising `a^T gram a`, by pairwise Frank-Wolfe.

    Each step moves weight from the "away" task (largest `(gram a)_k` among those
    with weight) to the "toward" task (smallest), with an exact line search; unlike
    the plain Frank-Wolfe of Sener and Koltun this converges linearly (Lacoste-Julien
    and Jaggi, NeurIPS 2015). After each step, the minimiser on the affine hull of
    the current support (a (K x K) linear solve) replaces the iterate when it lies
    in the simplex: once the support is right that is the exact answer, so a few
    steps suffice. Starts from the task with the smallest gradient, so two tasks
    take one step (the closed form). Stops when the pairwise gap
    `(gram a)_away - (gram a)_toward`, a bound on the suboptimality, falls below
    `tolerance * max_k gram_kk`, or after `max_iterations` steps.
    """
    k = gram.shape[0]
    diagonal = ops.diagonal(gram)
    threshold = tolerance * ops.max(diagonal)
    # Keeps the support's system solvable when its gradients are linearly dependent.
    ridge = 1e-7 * ops.max(diagonal)

    def directions(weights):
        products = ops.matmul(gram, weights)
        toward = ops.one_hot(ops.argmin(products), k, dtype=gram.dtype)
        away = ops.one_hot(ops.argmax(ops.where(weights > 0, products, -float("inf"))), k,
                           dtype=gram.dtype)
        return products, toward, away

    def not_converged(i, weights):
        products, toward, away = directions(weights)
        return ops.sum((away - toward) * products) > threshold

    def step(i, weights):
        products, toward, away = directions(weights)
        direction = toward - away
        curvature = ops.sum(direction * ops.matmul(gram, direction))
        size = ops.clip(ops.divide_no_nan(-ops.sum(direction * products), curvature),
                        0.0, ops.sum(away * weights))
        weights = weights + size * direction
        support = ops.cast(weights > 0, gram.dtype)
        system = (gram * support[:, None] * support[None, :]
                  + ops.diag(1.0 - support + ridge * support))
        solution = ops.solve(system, support[:, None])[:, 0]
        candidate = ops.divide_no_nan(solution, ops.sum(solution))
        norm = ops.sum(weights * ops.matmul(gram, weights))
        better = ops.all(candidate >= 0) & (ops.sum(candidate * ops.matmul(gram, candidate)) <= norm)
        return i + 1, ops.where(better, candidate, weights)

    start = ops.one_hot(ops.argmin(diagonal), k, dtype=gram.dtype)
    return ops.while_loop(not_converged, step, (0, start), maximum_iterations=max_iterations)[1]


@register("mgda")
@keras.saving.register_keras_serializable(package="keras_mtl")
class MGDA(GradientWeighting):
    """MGDA: descend along the minimum-norm element of the convex hull of the task
    gradients, a direction that decreases every task loss (or a Pareto-stationary
    point when it is zero).

    With `M = G G^T` the K x K Gramian of the per-task gradients (rows of `G`
    divided by the normalisers below), `a` minimises `a^T M a` on the simplex,
    found in-graph by pairwise Frank-Wolfe (`min_norm_weights`). On the shared
    representation's gradients (the model's representation mode) this is MGDA-UB.

    Returns `combined = K sum_k a_k g_k` on the raw gradients `g_k`, i.e. the
    logged weights are `K a` (they sum to K): K times the min-norm point, so that
    the step has the scale of equal weighting's sum of gradients (LibMTL returns the
    min-norm point itself, `sum_k a_k g_k`). As in the authors' code, the
    normaliser only shapes `a`; LibMTL applies `a` to the normalised gradients.

    Reference: Sener, Koltun, "Multi-Task Learning as Multi-Objective
    Optimization", NeurIPS 2018.

    Args:
        normalization: gradient normaliser before solving: "none", "l2" (the
            gradient's norm), "loss" (the task loss) or "loss+" (loss times norm).
        max_iterations: the most Frank-Wolfe steps per training step.
        tolerance: stop when the pairwise gap is below this fraction of the
            largest squared gradient norm.
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting=MGDA(normalization="loss+"))`
    """

    def __init__(self, normalization="none", max_iterations=100, tolerance=1e-6,
                 gradient_mode="shared_parameters", **kwargs):
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        if normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {_NORMALIZATIONS}. Received: normalization={normalization!r}"
            )
        if not int(max_iterations) >= 1:
            raise ValueError(f"max_iterations must be >= 1. Received: max_iterations={max_iterations!r}")
        if not float(tolerance) >= 0:
            raise ValueError(f"tolerance must be >= 0. Received: tolerance={tolerance!r}")
        self.normalization = normalization
        self.max_iterations = int(max_iterations)
        self.tolerance = float(tolerance)

    def _normalizers(self, gram, losses):
        norms = ops.sqrt(ops.maximum(ops.diagonal(gram), 0.0))
        if self.normalization == "l2":
            return norms
        if self.normalization == "loss":
            return losses
        if self.normalization == "loss+":
            return losses * norms
        return ops.ones_like(losses)

    def combine_gradients(self, grads, losses):
        matrix = ops.cast(grads, "float32")
        gram = ops.matmul(matrix, ops.transpose(matrix))
        normalizers = self._normalizers(gram, ops.cast(ops.stop_gradient(losses), "float32"))
        # A zero normaliser (zero gradient or loss) keeps that task's gradient as is.
        inverse = ops.where(normalizers > 0, 1.0 / ops.where(normalizers > 0, normalizers, 1.0), 1.0)
        normalized_gram = gram * inverse[:, None] * inverse[None, :]
        weights = self.num_tasks * min_norm_weights(normalized_gram, self.max_iterations, self.tolerance)
        combined = ops.matmul(weights[None, :], matrix)[0]
        return ops.cast(combined, grads.dtype), weights

    def get_config(self):
        config = super().get_config()
        config.update(normalization=self.normalization, max_iterations=self.max_iterations,
                      tolerance=self.tolerance)
        return config
