"""CAGrad: the update in a ball around the mean gradient that best helps the worst task."""

import keras
from keras import ops

from keras_mtl.weighting.base import GradientWeighting
from keras_mtl.weighting.registry import register


_RESCALES = (0, 1, 2)
# Keeps the line search's cosine strictly inside (-1, 1), where its closed form is finite.
_COSINE_LIMIT = 1.0 - 1e-7


@register("cagrad")
@keras.saving.register_keras_serializable(package="keras_mtl")
class CAGrad(GradientWeighting):
    """Conflict-Averse Gradient descent.

    The update `d` maximises the smallest task improvement `min_k g_k . d` within
    the ball `||d - g0|| <= rho`, `g0` the mean gradient and `rho = c ||g0||`. Its
    dual: `w` on the simplex minimising `F(w) = g_w . g0 + rho ||g_w||`,
    `g_w = sum_k w_k g_k`, and `d = g0 + rho g_w / ||g_w||`. `F` depends on the
    gradients only through the K x K Gramian; it is minimised in-graph by pairwise
    Frank-Wolfe with an exact (closed-form) line search instead of the authors'
    scipy solver. With `c = 0`, `d = g0`.

    Returns `combined = K d / r`, `r` from `rescale` (0: 1, 1: `1 + c^2`,
    2: `1 + c`), so the scale is equal weighting's sum of gradients (LibMTL
    returns `d / r`, the scale of the mean). The logged weights are the effective
    ones, `K (1/K + lambda w) / r` with `lambda = rho / ||g_w||`.

    Reference: Liu, Liu, Jin, Stone, Liu, "Conflict-Averse Gradient Descent for
    Multi-task Learning", NeurIPS 2021.

    Args:
        c: the radius of the ball relative to the mean gradient's norm (>= 0).
        rescale: 0, 1 or 2, the division of the update described above.
        max_iterations: the most Frank-Wolfe steps per training step.
        tolerance: stop when the pairwise gap is below this fraction of the
            largest squared gradient norm.
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting=CAGrad(c=0.4))`
    """

    def __init__(self, c=0.5, rescale=1, max_iterations=50, tolerance=1e-6,
                 gradient_mode="shared_parameters", **kwargs):
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        if not float(c) >= 0:
            raise ValueError(f"c must be >= 0. Received: c={c!r}")
        if rescale not in _RESCALES:
            raise ValueError(f"rescale must be one of {_RESCALES}. Received: rescale={rescale!r}")
        if not int(max_iterations) >= 1:
            raise ValueError(f"max_iterations must be >= 1. Received: max_iterations={max_iterations!r}")
        if not float(tolerance) >= 0:
            raise ValueError(f"tolerance must be >= 0. Received: tolerance={tolerance!r}")
        self.c = float(c)
        self.rescale = int(rescale)
        self.max_iterations = int(max_iterations)
        self.tolerance = float(tolerance)

    def _dual_weights(self, gram, radius):
        """The minimiser `w` of `F` by pairwise Frank-Wolfe, from the uniform weights."""
        k = self.num_tasks
        to_mean = ops.mean(gram, axis=1)
        threshold = self.tolerance * ops.max(ops.diagonal(gram))

        def directions(weights):
            products = ops.matmul(gram, weights)
            norm = ops.sqrt(ops.maximum(ops.sum(weights * products), 0.0))
            gradient = to_mean + radius * ops.divide_no_nan(products, norm)
            toward = ops.one_hot(ops.argmin(gradient), k)
            away = ops.one_hot(ops.argmax(ops.where(weights > 0, gradient, -float("inf"))), k)
            return products, gradient, toward, away

        def not_converged(i, weights):
            _, gradient, toward, away = directions(weights)
            return ops.sum((away - toward) * gradient) > threshold

        def step(i, weights):
            products, _, toward, away = directions(weights)
            direction = toward - away
            # Along g_w + s v, v = g_toward - g_away: F(s) = const + s v.g0
            # + rho ||g_w + s v||, whose stationary point has v's cosine with
            # g_w + s v equal to -v.g0 / (rho ||v||).
            curvature = ops.sum(direction * ops.matmul(gram, direction))
            along = ops.sum(direction * products)
            cosine = ops.clip(ops.divide_no_nan(-ops.sum(direction * to_mean),
                                                radius * ops.sqrt(curvature)),
                              -_COSINE_LIMIT, _COSINE_LIMIT)
            # Squared distance from the origin to the line g_w + s v.
            distance = ops.maximum(
                ops.sum(weights * products) - ops.divide_no_nan(along * along, curvature), 0.0)
            target = cosine * ops.sqrt(curvature * distance / (1.0 - cosine * cosine))
            size = ops.clip(ops.divide_no_nan(target - along, curvature), 0.0, ops.sum(away * weights))
            return i + 1, weights + size * direction

        start = ops.ones((k,)) / k
        return ops.while_loop(not_converged, step, (0, start), maximum_iterations=self.max_iterations)[1]

    def combine_gradients(self, grads, losses):
        k = self.num_tasks
        matrix = ops.cast(grads, "float32")
        gram = ops.matmul(matrix, ops.transpose(matrix))
        radius = self.c * ops.sqrt(ops.maximum(ops.mean(gram), 0.0))
        weights = self._dual_weights(gram, radius)
        norm = ops.sqrt(ops.maximum(ops.sum(weights * ops.matmul(gram, weights)), 0.0))
        coefficients = 1.0 / k + ops.divide_no_nan(radius, norm) * weights
        divisor = {0: 1.0, 1: 1.0 + self.c ** 2, 2: 1.0 + self.c}[self.rescale]
        effective = k * coefficients / divisor
        combined = ops.matmul(effective[None, :], matrix)[0]
        return ops.cast(combined, grads.dtype), effective

    def get_config(self):
        config = super().get_config()
        config.update(c=self.c, rescale=self.rescale, max_iterations=self.max_iterations,
                      tolerance=self.tolerance)
        return config
