"""Nash-MTL: the update that is the Nash bargaining solution between the tasks."""

import keras
from keras import ops

from keras_mtl.weighting.base import GradientWeighting
from keras_mtl.weighting.registry import register


# A ridge on the (Frobenius-normalised) Gramian: with exactly opposed gradients the
# bargaining problem has no solution and Newton's iterates would grow without bound.
_RIDGE = 1e-6


# Newton's decrement^2 / 2 bounds the suboptimality; below this, float32 noise.
_DECREMENT_TOLERANCE = 1e-10


def bargaining_weights(gram, start, max_iterations):
    """The `a > 0` solving `gram a = 1 / a`, by damped Newton steps from `start`.

    `a` is the minimiser of the self-concordant `f(a) = a^T gram a / 2 - sum_k log a_k`;
    the damped step `a + delta / (1 + lambda)` (`lambda` the Newton decrement) stays
    positive and converges from any positive start, quadratically near the solution.
    The start is rescaled to satisfy `a^T gram a = K`, as the solution does. Stops
    when `lambda^2` falls below 1e-10 or after `max_iterations` steps.
    """
    k = gram.shape[0]
    gram = gram + _RIDGE * ops.eye(k)
    curvature = ops.sum(start * ops.matmul(gram, start))
    start = start * ops.sqrt(ops.divide_no_nan(ops.cast(k, gram.dtype), curvature))

    def not_converged(weights, squared_decrement):
        return squared_decrement > _DECREMENT_TOLERANCE

    def newton(weights, squared_decrement):
        gradient = ops.matmul(gram, weights) - 1.0 / weights
        hessian = gram + ops.diag(1.0 / (weights * weights))
        delta = -ops.solve(hessian, gradient[:, None])[:, 0]
        squared_decrement = ops.maximum(-ops.sum(gradient * delta), 0.0)
        return weights + delta / (1.0 + ops.sqrt(squared_decrement)), squared_decrement

    return ops.while_loop(not_converged, newton, (start, ops.convert_to_tensor(float("inf"))),
                          maximum_iterations=max_iterations)[0]


@register("nash_mtl")
@keras.saving.register_keras_serializable(package="keras_mtl")
class NashMTL(GradientWeighting):
    """Nash-MTL: the tasks bargain over the update direction.

    The update `d = sum_k a_k g_k` maximises `sum_k log(g_k . d)` in a ball; its
    weights solve `(G G^T) a = 1 / a`, `a > 0`. As in the authors' code the Gramian
    is first divided by its Frobenius norm (so `a` does not depend on the gradients'
    scale), and `d` is clipped to norm `max_norm`. The K x K problem is solved
    in-graph by damped Newton steps (see `bargaining_weights`), warm
    started from the previous weights, instead of the authors' CCP sequence of
    cvxpy problems on the CPU. With `update_weights_every = n > 1` the weights are
    recomputed only every n-th step and kept in a variable in between.

    Returns `combined = d` (after clipping) and logs the effective weights `a`
    times the clipping factor, as the authors and LibMTL do: for K equal gradients
    `a = 1` and `d` is their sum, the scale of equal weighting. `max_norm` applies to
    the gradient of the global batch's losses, without the loss scale of mixed
    precision (the train step hands over such gradients).

    Reference: Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik, Fetaya,
    "Multi-Task Learning as a Bargaining Game", ICML 2022.

    Args:
        update_weights_every: recompute the weights every this many steps.
        max_iterations: the most damped Newton steps per weight update.
        max_norm: clip the update to this norm; 0 for no clipping.
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).

    Example: `model.compile(optimizer="adam", weighting=NashMTL(update_weights_every=5))`
    """

    def __init__(self, update_weights_every=1, max_iterations=20, max_norm=1.0,
                 gradient_mode="shared_parameters", **kwargs):
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        if not int(update_weights_every) >= 1:
            raise ValueError(
                f"update_weights_every must be >= 1. Received: update_weights_every={update_weights_every!r}"
            )
        if not int(max_iterations) >= 1:
            raise ValueError(f"max_iterations must be >= 1. Received: max_iterations={max_iterations!r}")
        if not float(max_norm) >= 0:
            raise ValueError(f"max_norm must be >= 0. Received: max_norm={max_norm!r}")
        self.update_weights_every = int(update_weights_every)
        self.max_iterations = int(max_iterations)
        self.max_norm = float(max_norm)

    def build(self, input_shape):
        super().build(input_shape)
        self.bargaining = self.add_weight(shape=(self.num_tasks,), initializer="ones", trainable=False,
                                          aggregation="mean", name="bargaining_weights")
        self.steps = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                     aggregation="mean", name="steps")

    def _solve(self, gram):
        previous = ops.convert_to_tensor(self.bargaining)
        normalized = ops.divide_no_nan(gram, ops.sqrt(ops.sum(gram * gram)))
        weights = bargaining_weights(normalized, previous, self.max_iterations)
        # A failed solve (e.g. a zero Gramian) keeps the previous weights.
        usable = ops.all(ops.isfinite(weights)) & ops.all(weights > 0)
        return ops.where(usable, weights, previous)

    def combine_gradients(self, grads, losses):
        matrix = ops.cast(grads, "float32")
        gram = ops.matmul(matrix, ops.transpose(matrix))
        if self.update_weights_every == 1:
            weights = self._solve(gram)
        else:
            due = ops.equal(ops.mod(self.steps, float(self.update_weights_every)), 0.0)
            weights = ops.cond(due, lambda: self._solve(gram),
                               lambda: ops.convert_to_tensor(self.bargaining))
        self.bargaining.assign(weights)
        self.steps.assign(self.steps + 1.0)
        if self.max_norm > 0:
            norm = ops.sqrt(ops.sum(weights * ops.matmul(gram, weights)))
            weights = weights * self.max_norm / ops.maximum(norm, self.max_norm)
        combined = ops.matmul(weights[None, :], matrix)[0]
        return ops.cast(combined, grads.dtype), weights

    def get_config(self):
        config = super().get_config()
        config.update(update_weights_every=self.update_weights_every, max_iterations=self.max_iterations,
                      max_norm=self.max_norm)
        return config
