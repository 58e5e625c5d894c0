"""Nash-MTL: the update that is the Nash bargaining solution between the tasks."""

import keras
import numpy as np
from keras import ops

from keras_mtl.weighting._checks import check_float, check_int
from keras_mtl.weighting.base import GradientWeighting, present_mask, unit_gramian
from keras_mtl.weighting.registry import register


# Newton's decrement^2 / 2 bounds the suboptimality; below this, float32 noise.
_DECREMENT_TOLERANCE = 1e-10


def divergence_bound(dtype):
    """The weight past which `bargaining_weights` stops (by default, for cosines
    of this dtype): there `c_i c_j C_ij + 1` loses the 1 to the rounding of `C`,
    so that the existence of a solution that large is decided by rounding."""
    return 0.1 / float(np.sqrt(np.finfo(keras.backend.standardize_dtype(dtype)).eps))


def bargaining_weights(cosines, start, max_iterations, bound=None):
    """The `c > 0` solving `cosines c = 1 / c`, by damped Newton steps from `start`.

    `c` is the minimiser of the self-concordant `f(c) = c^T C c / 2 - sum_k log c_k`;
    the damped step `c + delta / (1 + lambda)` (`lambda` the Newton decrement) stays
    positive and converges from any positive start, quadratically near the solution
    (where a solution exists: without one, `f` is unbounded below and `c` grows).
    The start is rescaled to satisfy `c^T C c = K`, as the solution does. Stops
    when `lambda^2` falls below 1e-10, a weight exceeds `bound` (no solution; default `divergence_bound`), or after
    `max_iterations` steps. Returns `c`
    and the residual `max_k |c_k (C c)_k - 1|`.
    """
    k = cosines.shape[0]
    diverged = divergence_bound(cosines.dtype) if bound is None else bound
    curvature = ops.sum(start * ops.matmul(cosines, start))
    # (Unless `c^T C c` is 0 at the start: opposed gradients, no solution.)
    start = start * ops.where(curvature > 0, ops.sqrt(ops.cast(k, cosines.dtype) / ops.where(curvature > 0, curvature, 1.0)),
                              1.0)

    def not_converged(weights, squared_decrement):
        # A damped step at most doubles a weight (see `divergence_bound`).
        return (squared_decrement > _DECREMENT_TOLERANCE) & (ops.max(weights) < diverged)

    def newton(weights, squared_decrement):
        gradient = ops.matmul(cosines, weights) - 1.0 / weights
        # The Newton system `(C + diag(1/c^2)) delta = -gradient`, solved as
        # `(diag(c) C diag(c) + I) (delta / c) = -c gradient`: its eigenvalues are
        # at least 1, so it stays invertible where `c` grows without bound (no
        # solution) or `C` is singular (duplicated or parallel gradients).
        system = weights[:, None] * cosines * weights[None, :] + ops.eye(k, dtype=cosines.dtype)
        delta = -weights * ops.solve(system, (weights * gradient)[:, None])[:, 0]
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
    weights solve the paper's equation `(G G^T) a = 1 / a`, `a > 0`. So do the
    authors' weights: their code divides the Gramian by its Frobenius norm `N`
    but multiplies it back in its constraints (`a_k N (G G^T / N a)_k >= 1`), so
    its fixed point is the same equation (as in TorchJD); then `||d|| = sqrt(K)`
    whatever the gradients' scale, and `d` is clipped to norm `max_norm`. With
    `normalize_gramian=True` the weights instead solve the equation for
    `G G^T / N`, i.e. they are `sqrt(N)` times the paper's, so that `d` follows
    the gradients' scale (`||d|| = sqrt(K N)` before clipping).

    With `G G^T = diag(n) C diag(n)` (`n` the gradients' norms, `C` their
    cosines), `a = c / n` (times `sqrt(N)`, computed from `n` and `C` so that it
    neither overflows nor underflows in float32 at any gradient scale) where `c`
    solves `C c = 1 / c`: solved in that basis, the answer's accuracy depends on
    the angles between the gradients, not on their norms. `c` is found in-graph by
    damped Newton steps to convergence (see `bargaining_weights`), warm started
    from the previous weights, instead of the authors' sequence of cvxpy problems
    on the CPU (which stops after at most 20); no ridge is added. The residual is
    `max_k |c_k (C c)_k - 1|`.

    Degenerate input: duplicated or parallel gradients have a solution (the
    copies share the weight); a zero gradient (its `log(g_k . d)` is `-inf` for
    every `d`) gets weight 0 and the other tasks are solved alone. Where the
    problem has no solution, 0 in the convex hull of the other gradients (e.g.
    exactly opposed gradients: no `d` improves every task), the solve does not
    converge: its weights grow until `divergence_bound`, and then the previous
    weights are kept (at the start, all 1: equal weighting, clipped) and the
    residual is infinite. (A solve cut short by `max_iterations` is used, its
    residual reported.)
    With `update_weights_every = n > 1` the weights are recomputed only every
    n-th step and kept in a variable in between. Absent tasks get weight 0.

    Returns `combined = d` (after clipping) and logs the effective weights `a`
    times the clipping factor, as the authors and LibMTL do. `max_norm` applies to
    the gradient of the global batch's losses, without the loss scale of mixed
    precision (the train step hands over such gradients).

    Reference: Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik, Fetaya,
    "Multi-Task Learning as a Bargaining Game", ICML 2022.

    Args:
        update_weights_every: recompute the weights every this many steps.
        max_iterations: a cap on the damped Newton steps per weight update.
        max_norm: clip the update to this norm; 0 for no clipping.
        normalize_gramian: solve for the Gramian divided by its Frobenius norm
            (weights `sqrt(N)` times the paper's) instead of the paper's equation.
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting=NashMTL(update_weights_every=5))`
    """

    def __init__(self, update_weights_every=1, max_iterations=100, max_norm=1.0, normalize_gramian=False,
                 gradient_mode="shared_parameters", **kwargs):
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        self.update_weights_every = check_int("update_weights_every", update_weights_every, minimum=1)
        self.max_iterations = check_int("max_iterations", max_iterations, minimum=1)
        self.max_norm = check_float("max_norm", max_norm, minimum=0)
        if not isinstance(normalize_gramian, bool):
            raise ValueError(f"normalize_gramian must be True or False. Received: "
                             f"normalize_gramian={normalize_gramian!r}")
        self.normalize_gramian = normalize_gramian

    def build(self, input_shape):
        super().build(input_shape)
        self.bargaining = self.add_weight(shape=(self.num_tasks,), initializer="ones", trainable=False,
                                          aggregation="mean", name="bargaining_weights")
        self.steps = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                     aggregation="mean", name="steps")

    def _solve(self, gram, present):
        """New bargaining weights and the residual; a failed solve (a zero Gramian,
        no solution) keeps the previous weights."""
        previous = ops.convert_to_tensor(self.bargaining)
        norms, cosines = unit_gramian(gram)
        usable = present & (norms > 0)
        mask = ops.cast(usable, keras.config.floatx())
        cosines = cosines * mask[:, None] * mask[None, :] + ops.diag(1.0 - mask)
        if self.normalize_gramian:
            # sqrt(||G G^T||_F) = m sqrt(||diag(n/m) C diag(n/m)||_F), m = max n:
            # no square of the Gramian's entries, which over- or underflow.
            largest = ops.max(norms * mask)
            relative = ops.divide_no_nan(norms * mask, largest)
            scaled = relative[:, None] * cosines * relative[None, :]
            scale = largest * ops.sqrt(ops.sqrt(ops.sum(scaled * scaled)))
        else:
            scale = ops.ones(())
        # The K x K work in float64 where the backend has it, like the min-norm
        # solver's; beyond the bound for the Gramian's own precision, a solution
        # would be an artefact of its rounding (0 on the edge of the hull).
        start = ops.where(usable, previous * ops.divide_no_nan(norms, scale), 1.0)
        start = ops.cast(ops.where(start > 0, start, 1.0), "float64")
        bound = divergence_bound(cosines.dtype)
        solution, residual = bargaining_weights(ops.cast(cosines, "float64"), start, self.max_iterations, bound)
        diverged = ops.max(solution) >= bound
        solution, residual = ops.cast(solution, keras.config.floatx()), ops.cast(residual, keras.config.floatx())
        weights = ops.divide_no_nan(solution, norms) * scale * mask
        solved = (ops.all(ops.isfinite(weights)) & ops.all(ops.where(usable, weights > 0, True))
                  & ~diverged & ops.any(usable))
        return (ops.where(solved, weights, previous * mask),
                ops.where(solved, residual, ops.where(ops.any(usable), float("inf"), 0.0)))

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
                      max_norm=self.max_norm, normalize_gramian=self.normalize_gramian)
        return config

    @classmethod
    def from_config(cls, config):
        # A configuration without `normalize_gramian` comes from a `.keras` file written
        # when the normalised form was the only one: it keeps the form it trained with.
        return cls(**{"normalize_gramian": True, **config})
