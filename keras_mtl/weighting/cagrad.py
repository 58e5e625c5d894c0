"""CAGrad: the update in a ball around the mean gradient that best helps the worst task."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float, check_int
from keras_mtl.weighting.base import GradientWeighting, present_mask, unit_gramian
from keras_mtl.weighting.min_norm import hull_tolerance, min_norm_weights, unit_hull_distance2
from keras_mtl.weighting.registry import register


_RESCALES = (0, 1, 2)


@register("cagrad")
@keras.saving.register_keras_serializable(package="keras_mtl")
class CAGrad(GradientWeighting):
    """Conflict-Averse Gradient descent.

    The update `d` maximises the smallest task improvement `min_k g_k . d` within
    the ball `||d - g0|| <= rho`, `g0` the mean gradient and `rho = c ||g0||`. Its
    dual: `w` on the simplex minimising `F(w) = g_w . g0 + rho ||g_w||`,
    `g_w = sum_k w_k g_k`, and `d = g0 + rho g_w / ||g_w||`.

    Solved exactly in-graph through the min-norm solver that MGDA uses: with
    `||g_w|| = min_t (||g_w||^2 / t + t) / 2`, minimising `F` for a fixed `t` is the
    min-norm problem of the shifted gradients `g_k + s g0`, `s = t / rho` (their
    Gramian follows from `G G^T`), and the best `t` for a fixed `w` is `||g_w||`.
    The two are alternated (each step lowers `F`, a jointly convex function of
    `(w, t)`) until `s` changes by less than `tolerance` relative, warm-starting
    each min-norm solve from the last weights. The authors solve the dual with
    scipy's SLSQP on the CPU; the answer is the same problem's optimum. The
    residual is the largest violation of the optimality conditions of `d`
    (`g_k . d` equal on the support and not smaller elsewhere), as a cosine.
    Absent tasks are left out (`g0` is the mean of the present tasks' gradients).

    Degenerate input: duplicated and parallel gradients are solved exactly
    (the first min-norm solve starts from one gradient, so its support never
    holds two copies). With `c >= 1` and 0 in the convex hull of the gradients
    (exactly opposed gradients, a zero gradient, ...) the optimum's value is 0,
    the dual's `g_w` is 0 and `d = 0` is returned, an optimum that conflicts with
    no task. With `c < 1` and a value of 0 (0 on the hull's boundary, e.g. a zero
    gradient) the optimum is not unique; `d = g0` is returned, optimal where no
    task conflicts with `g0`.

    Returns `combined = K d / r`, `r` from `rescale` (0: 1, 1: `1 + c^2`,
    2: `1 + c`), so the scale is equal weighting's sum of gradients (LibMTL
    returns `d / r`, the scale of the mean); K counts the present tasks. The
    logged weights are the effective ones, `K (1/K + lambda w) / r` with
    `lambda = rho / ||g_w||`.

    Reference: Liu, Liu, Jin, Stone, Liu, "Conflict-Averse Gradient Descent for
    Multi-task Learning", NeurIPS 2021.

    Args:
        c: the radius of the ball relative to the mean gradient's norm (>= 0).
        rescale: 0, 1 or 2, the division of the update described above.
        max_iterations: a cap on the alternations (each a min-norm solve) after the first.
        tolerance: stop when `s` changes by less than this, relative.
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting=CAGrad(c=0.4))`
    """

    def __init__(self, c=0.5, rescale=1, max_iterations=100, tolerance=1e-6,
                 gradient_mode="shared_parameters", **kwargs):
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        if rescale not in _RESCALES:
            raise ValueError(f"rescale must be one of {_RESCALES}. Received: rescale={rescale!r}")
        self.c = check_float("c", c, minimum=0)
        self.rescale = int(rescale)
        self.max_iterations = check_int("max_iterations", max_iterations, minimum=1)
        self.tolerance = check_float("tolerance", tolerance, minimum=0)

    def _dual_weights(self, gram, to_mean, mean_norm2, radius, present):
        """The minimiser `w` of `F` by alternating min-norm solves and `t` updates
        (in float64 where the backend has it, like the min-norm solver)."""
        gram, to_mean, mean_norm2, radius = (ops.cast(v, "float64") for v in (gram, to_mean, mean_norm2, radius))
        uniform = ops.cast(present, "float64") / ops.maximum(ops.sum(ops.cast(present, "float64")), 1.0)

        def solve(shift, start):
            shifted = (gram + shift * (to_mean[:, None] + to_mean[None, :])
                       + shift * shift * mean_norm2)
            return ops.cast(min_norm_weights(shifted, present, start=start)[0], "float64")

        def shift_of(weights):
            return ops.divide_no_nan(ops.sqrt(ops.maximum(ops.sum(weights * ops.matmul(gram, weights)), 0.0)),
                                     radius)

        def not_converged(i, shift, weights, change):
            return change > self.tolerance

        def step(i, shift, weights, change):
            weights = solve(shift, weights)
            new_shift = shift_of(weights)
            return i + 1, new_shift, weights, ops.abs(new_shift - shift) / ops.maximum(new_shift, shift)

        # The first solve starts from the solver's own start (one gradient), not
        # from `uniform`: the start's support must be affinely independent, and
        # duplicated gradients are not. Later solves start from the last answer,
        # whose support is affinely independent, and stays so under the common
        # shift of all gradients.
        shift = shift_of(uniform)
        first = solve(shift, None)
        _, _, weights, _ = ops.while_loop(
            not_converged, step, (1, shift_of(first), first, ops.convert_to_tensor(1.0, "float64")),
            maximum_iterations=self.max_iterations)
        return ops.cast(weights, keras.config.floatx())

    def gramian_weights(self, gram, losses, present=None):
        present = present_mask(present, self.num_tasks)
        mask = ops.cast(present, keras.config.floatx())
        count = ops.maximum(ops.sum(mask), 1.0)
        to_mean = ops.matmul(gram, mask) / count  # g_k . g0
        mean_norm2 = ops.maximum(ops.sum(mask * to_mean) / count, 0.0)
        radius = self.c * ops.sqrt(mean_norm2)
        if self.c > 0:
            weights = self._dual_weights(gram, to_mean, mean_norm2, radius, present)
        else:
            weights = mask / count
        norm = ops.sqrt(ops.maximum(ops.sum(weights * ops.matmul(gram, weights)), 0.0))
        coefficients = mask / count + ops.divide_no_nan(radius, norm) * weights
        if self.c >= 1:
            # d = 0 is in the ball. It is the optimum where 0 is in the convex hull
            # of the gradients (the optimum's value is then 0, and the dual's `g_w`
            # is 0 up to rounding, so `g_w / ||g_w||` does not give the primal's d):
            # decided from the geometry, as Nash-MTL decides it, not from the sign of
            # `min_k g_k . d`, which that rounding sets. It is also taken where the
            # computed d conflicts with a task.
            norms, cosines = unit_gramian(gram)
            usable = present & (norms > 0)
            in_hull = ops.any(present & (norms <= 0)) | (
                unit_hull_distance2(cosines, usable) <= hull_tolerance(gram.dtype))
            worst = ops.min(ops.where(present, ops.matmul(gram, coefficients), float("inf")))
            coefficients = ops.where(in_hull | (worst <= 0), 0.0, coefficients)
        divisor = {0: 1.0, 1: 1.0 + self.c ** 2, 2: 1.0 + self.c}[self.rescale]
        return count * coefficients / divisor, _residual(gram, coefficients, weights, present)

    def get_config(self):
        config = super().get_config()
        config.update(c=self.c, rescale=self.rescale, max_iterations=self.max_iterations,
                      tolerance=self.tolerance)
        return config


def _residual(gram, coefficients, weights, present):
    """How far `d = sum_k coefficients_k g_k` is from optimal: the products
    `g_k . d` must be equal on the support of `weights` and no smaller elsewhere;
    the largest violation, divided by `||g_k|| ||d||`."""
    products = ops.matmul(gram, coefficients)
    length = ops.sqrt(ops.maximum(ops.sum(coefficients * products), 0.0))
    level = ops.sum(weights * products)
    scale = ops.sqrt(ops.maximum(ops.diagonal(gram), 0.0)) * length
    on = ops.where(weights > 0, ops.abs(products - level), 0.0)
    off = ops.where(weights > 0, 0.0, ops.maximum(level - products, 0.0))
    return ops.max(ops.where(present, ops.divide_no_nan(ops.maximum(on, off), scale), 0.0))
