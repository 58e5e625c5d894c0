"""Projections onto the dual cone of the task gradients (UPGrad, DualProj)."""

import keras
import numpy as np
from keras import ops

from keras_mtl.weighting._checks import check_float, check_int
from keras_mtl.weighting.base import GradientWeighting, present_mask, unit_gramian


class DualConeWeighting(GradientWeighting):
    """Base of the methods whose update is a sum of projections onto the dual cone of
    the task gradients (UPGrad, DualProj): a subclass gives the bounds `b` (one row per
    projected vector `J^T b`, from the K booleans `present`); the weights are the sum
    of the projections' weights.

    Args:
        tolerance: the optimality test's bound, a cosine (scale-free).
        max_iterations: a cap on the solver's active-set steps (None: `10 K + 10`).
        gradient_mode: what the rows of the K x P matrix are: "shared_parameters"
            (gradients of the shared variables) or "representation" (gradients of
            the shared representation, then one backward pass through the trunk).
    """

    def __init__(self, tolerance=1e-7, max_iterations=None, gradient_mode="shared_parameters", **kwargs):
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        self.tolerance = check_float("tolerance", tolerance, minimum=0)
        self.max_iterations = (None if max_iterations is None
                               else check_int("max_iterations", max_iterations, minimum=1))

    def bounds(self, present):
        """The N x K bounds `b` (floatx) of the vectors `J^T b` to project."""
        raise NotImplementedError

    def gramian_weights(self, gram, losses, present=None):
        present = present_mask(present, self.num_tasks)
        weights, residual = dual_cone_weights(gram, self.bounds(present), present, self.tolerance,
                                              self.max_iterations)
        return ops.sum(weights, axis=0), residual

    def get_config(self):
        config = super().get_config()
        config.update(tolerance=self.tolerance, max_iterations=self.max_iterations)
        return config


def _einsum(subscripts, a, b):
    """`ops.einsum` of two operands in Keras' result dtype of theirs (Keras' torch
    einsum, unlike its TensorFlow and JAX ones, does not cast them to it)."""
    dtype = keras.backend.result_type(a.dtype, b.dtype)
    return ops.einsum(subscripts, ops.cast(a, dtype), ops.cast(b, dtype))


def dual_cone_weights(gram, bounds, available=None, tolerance=1e-7, max_iterations=None):
    """The weights of the projections of `J^T b` onto the dual cone of the rows of `J`
    (the directions `x` with `J x >= 0`), for each row `b >= 0` of `bounds`, given only
    the Gramian `gram = J J^T`. Returns `(weights, residual)`, `weights` shaped like
    `bounds`.

    By Proposition 1 of Quinton and Rey (2024), the projection of `J^T b` is `J^T v`
    with `v` a solution of `min_v v^T G v` subject to `v >= b`. That bound-constrained
    quadratic program is solved exactly by an active-set method (Lawson and Hanson's
    NNLS scheme on the Gramian): keep the set `F` of weights above their bounds and the
    minimiser with the others at their bounds; when it leaves the feasible set, step
    towards it until a weight reaches its bound and release that weight; once feasible,
    free the weight whose task gradient makes the most obtuse angle with `x = J^T v`, or
    stop when none does. All rows of `bounds` are solved together.

    Scale-free: the problem is solved in the basis of unit gradients (`y_k = ||g_k|| v_k`
    on the cosine matrix), each row's bounds divided by their largest entry, and the
    optimality test is on angles: stop when every weight at its bound has
    `g_k . x >= -tolerance ||g_k|| ||x||`.

    Args:
        gram: the K x K Gramian.
        bounds: N x K lower bounds `b >= 0` (one problem per row).
        available: optional K booleans; tasks outside get weight 0.
        tolerance: the optimality test's bound on the cosines.
        max_iterations: a cap on the active-set steps (default `10 K + 10`).

    Returns:
        `v` (N x K; a task with a zero gradient keeps its bound, which changes nothing in
        `J^T v`) and the residual: the largest violation of the optimality conditions as
        a cosine (`|g_k . x|` for weights above their bounds, `-g_k . x` for weights at
        them, each divided by `||g_k|| ||x||`) or a bound's (`b_k - v_k`, relative to the
        largest `||g_j|| b_j`); 0 at the exact answer.
    """
    k = gram.shape[0]
    out_dtype = gram.dtype
    # The K x K work is in float64 where the backend has it.
    gram = ops.cast(gram, "float64")
    epsilon = float(np.finfo(keras.backend.standardize_dtype(gram.dtype)).eps)
    bounds = ops.cast(bounds, "float64")
    if available is None:
        available = ops.ones((k,), "bool")
    max_iterations = 10 * k + 10 if max_iterations is None else max_iterations
    norms, cosines = unit_gramian(gram)
    usable = available & (norms > 0)
    lower = ops.where(usable[None, :], bounds * norms[None, :], 0.0)
    scale = ops.max(lower, axis=1, keepdims=True)
    lower = ops.divide_no_nan(lower, scale)
    eye = ops.eye(k, dtype=gram.dtype)

    def solve(free):
        """Per row, the minimiser of `y^T C y` with the weights outside `free` at their
        bounds: `C_FF y_F = -C_FB y_B`, by a pseudo-inverse (a rank-deficient block has
        many minimisers, all with the same `x`)."""
        mask = ops.cast(free, gram.dtype)
        system = cosines[None] * mask[:, :, None] * mask[:, None, :] + (1.0 - mask)[:, :, None] * eye[None]
        at_bounds = lower * (1.0 - mask)
        right = ops.where(free, -ops.matmul(at_bounds, cosines), lower)
        values, vectors = ops.eigh(system)
        cutoff = k * epsilon * ops.max(ops.abs(values), axis=1, keepdims=True)
        inverse = ops.where(ops.abs(values) > cutoff, 1.0 / ops.where(values == 0, 1.0, values), 0.0)
        coordinates = _einsum("nij,ni->nj", vectors, right) * inverse
        return _einsum("nij,nj->ni", vectors, coordinates)

    def angles(y):
        """`g_k . x / ||g_k||` per task and `||x||`, per row."""
        products = ops.matmul(y, cosines)
        length = ops.sqrt(ops.maximum(ops.sum(y * products, axis=1, keepdims=True), 0.0))
        return products, length

    def step(i, y, free, done):
        target = solve(free)
        feasible = ops.all(ops.where(free, target > lower, True), axis=1, keepdims=True)
        # Not feasible: move from y towards the target until a weight reaches its bound.
        leaving = free & (target <= lower)
        ratios = ops.where(leaving, ops.divide_no_nan(y - lower, y - target), 1.0)
        theta = ops.clip(ops.min(ratios, axis=1, keepdims=True), 0.0, 1.0)
        moved = y + theta * (target - y)
        kept = free & ~(leaving & (ratios <= theta))
        moved = ops.where(kept, moved, lower)
        # Feasible: take the target, then free the most obtuse task or stop.
        products, length = angles(target)
        candidates = usable[None, :] & ~free & (products < -tolerance * length)
        entering = ops.argmin(ops.where(candidates, products, float("inf")), axis=1)
        optimal = ~ops.any(candidates, axis=1, keepdims=True)
        grown = free | (ops.one_hot(entering, k) > 0)
        new_y = ops.where(done, y, ops.where(feasible, target, moved))
        new_free = ops.where(done, free, ops.where(feasible, ops.where(optimal, free, grown), kept))
        return i + 1, new_y, new_free, done | (feasible & optimal)

    start = (0, lower, ops.zeros_like(lower) > 0, ops.zeros_like(scale) > 0)
    _, y, free, _ = ops.while_loop(lambda i, y, free, done: ~ops.all(done), step, start,
                                   maximum_iterations=max_iterations)
    products, length = angles(y)
    violation = ops.where(free, ops.abs(products), ops.maximum(-products, 0.0))
    violation = ops.where(usable[None, :], ops.divide_no_nan(violation, length), 0.0)
    # Weights below their bounds (bounds scaled to at most 1).
    violation = ops.maximum(violation, ops.where(usable[None, :], ops.maximum(lower - y, 0.0), 0.0))
    weights = ops.where(usable[None, :], ops.divide_no_nan(y * scale, norms[None, :]), bounds)
    weights = ops.where(available[None, :], weights, 0.0)
    return ops.cast(weights, out_dtype), ops.cast(ops.max(violation), out_dtype)
