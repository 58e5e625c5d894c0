"""FairGrad: the update that maximises the alpha-fair utility of the tasks' improvements."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float, check_int
from keras_mtl.weighting.base import GradientWeighting, present_mask, unit_gramian
from keras_mtl.weighting.min_norm import hull_tolerance, unit_hull_distance2
from keras_mtl.weighting.registry import register

# Newton's decrement^2 / 2 bounds the suboptimality (in the scaled problem).
_DECREMENT_TOLERANCE = 1e-14
_HALVINGS = 40
# Below this squared decrement, Newton's full steps (quadratic convergence).
_FULL_STEPS = 1e-8


def fair_weights(cosines, ratios, power, max_iterations):
    """The `c > 0` solving `(C c)_k = r_k c_k^-p` (`C = cosines`, `r = ratios`,
    `p = power`), by damped Newton steps with backtracking on the strictly convex
    `f(c) = c^T C c / 2 - sum_k r_k h(c_k)`, `h' = c^-p` (`h = log` for `p = 1`,
    else `c^(1-p) / (1-p)`), from the minimiser of `f` along the ray of ones.
    Each step is at most half way to the boundary `c = 0` and halved until `f`
    falls by a quarter of the predicted decrease (until that decrease is below
    1e-8, where the full step converges quadratically). Stops when the squared Newton
    decrement falls below 1e-14 or after `max_iterations` steps. Returns `c` and
    the residual `max_k |c_k^p (C c)_k / r_k - 1|`."""
    k = cosines.shape[0]
    dtype = cosines.dtype

    def barrier(c):
        if power == 1.0:
            return ops.log(c)
        return ops.power(c, 1.0 - power) / (1.0 - power)

    def objective(c):
        return 0.5 * ops.sum(c * ops.matmul(cosines, c)) - ops.sum(ratios * barrier(c))

    def not_converged(c, squared_decrement):
        return squared_decrement > _DECREMENT_TOLERANCE

    def newton(c, squared_decrement):
        gradient = ops.matmul(cosines, c) - ratios * ops.power(c, -power)
        # In the relative step `z = delta / c`: the Hessian `C + diag(p r c^(-p-1))`
        # congruent by diag(c), as well conditioned as the cosines allow.
        system = c[:, None] * cosines * c[None, :] + ops.diag(power * ratios * ops.power(c, 1.0 - power))
        z = -ops.solve(system, (c * gradient)[:, None])[:, 0]
        squared_decrement = ops.maximum(-ops.sum(c * gradient * z), 0.0)
        start = ops.minimum(1.0, 0.5 / ops.maximum(ops.max(-z), 1e-300))
        value = objective(c)

        def too_long(step, halvings):
            # Full steps once the decrease is below the rounding of `f`.
            return (squared_decrement > _FULL_STEPS) & (
                objective(c * (1.0 + step * z)) > value - 0.25 * step * squared_decrement)

        step, _ = ops.while_loop(lambda step, halvings: too_long(step, halvings),
                                 lambda step, halvings: (step / 2.0, halvings + 1),
                                 (ops.convert_to_tensor(start, dtype), 0), maximum_iterations=_HALVINGS)
        return c * (1.0 + step * z), squared_decrement

    curvature = ops.sum(cosines)
    along_ones = ops.power(ops.divide_no_nan(ops.sum(ratios), curvature), 1.0 / (1.0 + power))
    start = ops.ones((k,), dtype) * ops.where(curvature > 0, along_ones, 1.0)
    c = ops.while_loop(not_converged, newton, (start, ops.convert_to_tensor(float("inf"), dtype)),
                       maximum_iterations=max_iterations)[0]
    residual = ops.max(ops.abs(ops.power(c, power) * ops.matmul(cosines, c) / ratios - 1.0))
    return c, residual


@register("fairgrad")
@keras.saving.register_keras_serializable(package="keras_mtl")
class FairGrad(GradientWeighting):
    """FairGrad: the update `d = sum_k w_k g_k` maximises the alpha-fair utility
    `sum_k (g_k . d)^(1 - alpha) / (1 - alpha)` (`sum_k log(g_k . d)` for
    `alpha = 1`) of the tasks' improvements in a ball; its weights solve the
    paper's equation 4, `(G G^T) w = w^(-1/alpha)`, `w > 0`. `alpha = 1`
    (proportional fairness) is Nash-MTL's equation; a larger alpha moves towards
    max-min fairness (the worst task's improvement).

    Solved exactly in-graph, in the basis of unit gradients as Nash-MTL is: with
    `G G^T = diag(n) C diag(n)`, `n = m nu` (`m` the largest norm) and
    `p = 1 / alpha`, `w_k = m^(-2 / (1 + p)) c_k / nu_k` where `c` solves
    `(C c)_k = nu_k^(p-1) c_k^-p` (see `fair_weights`), in float64 where the
    backend has it: neither over- nor underflows at any gradient scale. The
    authors (and TorchJD) solve the equation with scipy's `least_squares` from
    uniform weights, to its default tolerances. The residual is
    `max_k |c_k^p (C c)_k / r_k - 1|`, the equation's relative violation.

    Degenerate input as Nash-MTL: duplicated or parallel gradients have a
    solution; a zero gradient (no `w` satisfies its equation) gets weight 0 and
    the other tasks are solved alone; where 0 is in the convex hull of the
    gradients (no `d` improves every task, no solution; decided from the
    geometry as Nash-MTL does, see `keras_mtl.weighting.min_norm.hull_tolerance`)
    the previous weights are kept (at the start, all 1) and the residual is
    infinite. Absent tasks get weight 0 and keep their previous weight.

    Returns `combined = d`, unclipped, as the authors do (the paper's ball only
    scales `d`).

    Reference: Ban, Ji, "Fair Resource Allocation in Multi-Task Learning",
    ICML 2024.

    Args:
        alpha: the fairness parameter (> 0); 1 is proportional fairness.
        max_iterations: a cap on the Newton steps per weight update.
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting=FairGrad(alpha=2.0))`
    """

    def __init__(self, alpha=1.0, max_iterations=100, gradient_mode="shared_parameters", **kwargs):
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        self.alpha = check_float("alpha", alpha, above=0)
        self.max_iterations = check_int("max_iterations", max_iterations, minimum=1)

    def build(self, input_shape):
        super().build(input_shape)
        self.previous = self.add_weight(shape=(self.num_tasks,), initializer="ones", trainable=False,
                                        aggregation="mean", name="previous_weights")

    def gramian_weights(self, gram, losses, present=None):
        present = present_mask(present, self.num_tasks)
        previous = ops.convert_to_tensor(self.previous)
        floatx = keras.config.floatx()
        # The K x K work in float64 where the backend has it, like the min-norm
        # solver's, from the cosines of the Gramian as it is.
        norms, cosines = unit_gramian(ops.cast(gram, "float64"))
        usable = present & (norms > 0)
        mask = ops.cast(usable, "float64")
        power = 1.0 / self.alpha
        largest = ops.max(norms * mask)
        relative = ops.where(usable, ops.divide_no_nan(norms, largest), 1.0)
        cosines = cosines * mask[:, None] * mask[None, :] + ops.diag(1.0 - mask)
        solvable = unit_hull_distance2(cosines, usable) > hull_tolerance(gram.dtype)
        # Without a solution the iterates grow and the Newton system turns singular:
        # the solve runs on a stand-in problem (the identity) and its answer is not used.
        cosines = ops.where(solvable, cosines, ops.eye(self.num_tasks, dtype="float64"))
        c, residual = fair_weights(cosines, ops.power(relative, power - 1.0), power, self.max_iterations)
        # w = m^(-2 / (1 + p)) c / nu, through logarithms: m^(-2/(1+p)) alone may
        # leave float32's range where w does not.
        log_weights = (-2.0 / (1.0 + power)) * ops.log(ops.where(largest > 0, largest, 1.0)) + ops.log(c / relative)
        weights = ops.cast(ops.exp(log_weights) * mask, floatx)
        solved = solvable & ops.all(ops.isfinite(weights)) & ops.any(usable)
        weights = ops.where(solved, weights, previous * ops.cast(usable, floatx))
        residual = ops.where(solved, ops.cast(residual, floatx), ops.where(ops.any(usable), float("inf"), 0.0))
        self.previous.assign(ops.where(present & solved, weights, previous))
        return weights * ops.cast(present, floatx), residual

    def get_config(self):
        config = super().get_config()
        config.update(alpha=self.alpha, max_iterations=self.max_iterations)
        return config
