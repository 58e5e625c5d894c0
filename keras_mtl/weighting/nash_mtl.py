"""Nash-MTL: the update that is the Nash bargaining solution between the tasks."""

import keras
from keras import ops

from keras_mtl.weighting._checks import check_float, check_int
from keras_mtl.weighting.base import GradientWeighting, present_mask, unit_gramian
from keras_mtl.weighting.registry import register


# Newton's decrement^2 / 2 bounds the suboptimality; below this, float32 noise.
_DECREMENT_TOLERANCE = 1e-10


def bargaining_weights(cosines, start, max_iterations):
    """The `c > 0` solving `cosines c = 1 / c`, by damped Newton steps from `start`.

    `c` is the minimiser of the self-concordant `f(c) = c^T C c / 2 - sum_k log c_k`;
    the damped step `c + delta / (1 + lambda)` (`lambda` the Newton decrement) stays
    positive and converges from any positive start, quadratically near the solution.
    The start is rescaled to satisfy `c^T C c = K`, as the solution does. Stops
    when `lambda^2` falls below 1e-10 or after `max_iterations` steps. Returns `c`
    and the residual `max_k |c_k (C c)_k - 1|`.
    """
    k = cosines.shape[0]
    curvature = ops.sum(start * ops.matmul(cosines, start))
    start = start * ops.sqrt(ops.divide_no_nan(ops.cast(k, cosines.dtype), curvature))

    def not_converged(weights, squared_decrement):
        return squared_decrement > _DECREMENT_TOLERANCE

    def newton(weights, squared_decrement):
        gradient = ops.matmul(cosines, weights) - 1.0 / weights
        hessian = cosines + ops.diag(1.0 / (weights * weights))
        delta = -ops.solve(hessian, gradient[:, None])[:, 0]
        squared_decrement = ops.maximum(-ops.sum(gradient * delta), 0.0)
        return weights + delta / (1.0 + ops.sqrt(squared_decrement)), squared_decrement

    weights = ops.while_loop(not_converged, newton, (start, ops.convert_to_tensor(float("inf"), cosines.dtype)),
                             maximum_iterations=max_iterations)[0]
    return weights, ops.max(ops.abs(weights * ops.matmul(cosines, weights) - 1.0))


@register("nash_mtl")
@keras.saving.register_keras_serializable(package="keras_mtl")
class NashMTL(GradientWeighting):
    """Nash-MTL: the tasks bargain over the update direction.

    The update `d = sum_k a_k g_k` maximises `sum_k log(g_k . d)` in a ball; its
    weights solve `(G G^T) a = 1 / a`, `a > 0`. As in the authors' code the Gramian
    is first divided by its Frobenius norm (so `a` does not depend on the gradients'
    scale), and `d` is clipped to norm `max_norm`. With `G G^T = diag(n) C diag(n)`
    (`n` the gradients' norms, `C` their cosines), `a = c / n` where `c` solves the
    same problem for `C`, `C c = 1 / c`: solved in that basis, the answer's accuracy
    depends on the angles between the gradients, not on the ratio of their norms.
    `c` is found in-graph by damped Newton steps to convergence (see
    `bargaining_weights`), warm started from the previous weights, instead of the
    authors' sequence of cvxpy problems on the CPU (which stops after at most 20);
    no ridge is added, so the answer is the paper's `G G^T a = 1 / a` itself. With exactly opposed gradients it has no solution: the previous
    weights are kept and the residual reports it. The residual is
    `max_k |a_k (G G^T a)_k - 1|` (on the normalised Gramian). With
    `update_weights_every = n > 1` the weights are recomputed only every n-th
    step and kept in a variable in between. Absent tasks get weight 0.

    Returns `combined = d` (after clipping) and logs the effective weights `a`
    times the clipping factor, as the authors and LibMTL do: for K equal gradients
    `a = 1` and `d` is their sum, the scale of equal weighting. `max_norm` applies to
    the gradient of the global batch's losses, without the loss scale of mixed
    precision (the train step hands over such gradients).

    Reference: Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik, Fetaya,
    "Multi-Task Learning as a Bargaining Game", ICML 2022.

    Args:
        update_weights_every: recompute the weights every this many steps.
        max_iterations: a cap on the damped Newton steps per weight update.
        max_norm: clip the update to this norm; 0 for no clipping.
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting=NashMTL(update_weights_every=5))`
    """

    def __init__(self, update_weights_every=1, max_iterations=100, max_norm=1.0,
                 gradient_mode="shared_parameters", **kwargs):
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        self.update_weights_every = check_int("update_weights_every", update_weights_every, minimum=1)
        self.max_iterations = check_int("max_iterations", max_iterations, minimum=1)
        self.max_norm = check_float("max_norm", max_norm, minimum=0)

    def build(self, input_shape):
        super().build(input_shape)
        self.bargaining = self.add_weight(shape=(self.num_tasks,), initializer="ones", trainable=False,
                                          aggregation="mean", name="bargaining_weights")
        self.steps = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                     aggregation="mean", name="steps")

    def _solve(self, gram, present):
        """New bargaining weights and the residual; a failed solve (a zero Gramian,
        exactly opposed gradients) keeps the previous weights."""
        previous = ops.convert_to_tensor(self.bargaining)
        norms, cosines = unit_gramian(gram)
        usable = present & (norms > 0)
        mask = ops.cast(usable, keras.config.floatx())
        cosines = cosines * mask[:, None] * mask[None, :] + ops.diag(1.0 - mask)
        # a = sqrt(||G G^T||_F) c / n for the Frobenius-normalised Gramian.
        scale = ops.sqrt(ops.sqrt(ops.sum(gram * gram)))
        start = ops.where(usable, previous * norms / scale, 1.0)
        start = ops.where(start > 0, start, 1.0)
        solution, residual = bargaining_weights(cosines, start, self.max_iterations)
        weights = ops.divide_no_nan(solution * scale, norms) * mask
        usable_solve = ops.all(ops.isfinite(weights)) & ops.all(ops.where(usable, weights > 0, True))
        return (ops.where(usable_solve, weights, previous * mask),
                ops.where(usable_solve, residual, float("inf")))

    def gramian_weights(self, gram, losses, present=None):
        present = present_mask(present, self.num_tasks)
        if self.update_weights_every == 1:
            weights, residual = self._solve(gram, present)
        else:
            due = ops.equal(ops.mod(self.steps, float(self.update_weights_every)), 0.0)
            weights, residual = ops.cond(
                due, lambda: self._solve(gram, present),
                lambda: (ops.convert_to_tensor(self.bargaining), ops.zeros(())))
        # An absent task keeps its last weight for when it is present again.
        self.bargaining.assign(ops.where(present, weights, ops.convert_to_tensor(self.bargaining)))
        self.steps.assign(self.steps + 1.0)
        weights = weights * ops.cast(present, keras.config.floatx())
        if self.max_norm > 0:
            norm = ops.sqrt(ops.maximum(ops.sum(weights * ops.matmul(gram, weights)), 0.0))
            weights = weights * self.max_norm / ops.maximum(norm, self.max_norm)
        return weights, residual

    def get_config(self):
        config = super().get_config()
        config.update(update_weights_every=self.update_weights_every, max_iterations=self.max_iterations,
                      max_norm=self.max_norm)
        return config
