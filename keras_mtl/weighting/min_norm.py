"""The minimum-norm point of the convex hull of the task gradients (MGDA, CAGrad)."""

from keras import ops

from keras_mtl.weighting.base import unit_gramian


def min_norm_weights(gram, available=None, tolerance=1e-6, max_iterations=None, start=None):
    """The weights `a` on the simplex minimising `a^T gram a`: the point of the convex
    hull of the gradients nearest the origin. Returns `(a, residual)`.

    Wolfe's algorithm (Wolfe, "Finding the nearest point in a polytope", Math.
    Programming 1976), an active-set method that is exact once it has the right
    support: keep a set `S` of tasks and the point of their affine hull nearest the
    origin; while that point has a negative weight, step towards it until a weight
    reaches 0 and drop that task; once all are positive, take it as `x` and add the
    task `k` whose `(g_k - x) . x` is most negative, or stop when there is none.

    Scale-free throughout: the affine-hull systems are solved in the basis of unit
    gradients (the cosine matrix, a diagonal congruence of the bordered system), so
    gradient norms that differ by orders of magnitude do not degrade them, and the
    optimality test is on angles: stop when every task has
    `(g_k - x) . x >= -tolerance ||g_k|| ||x||`. The error that remains is that of the
    float32 Gramian's rounding, amplified by the cosine matrix's condition number.

    Args:
        gram: the K x K Gramian `G G^T` (float32).
        available: optional K booleans; tasks outside keep weight 0.
        tolerance: the optimality test's bound on the angles' cosines.
        max_iterations: a cap on the active-set steps (default `10 K + 10`; the
            algorithm ends in fewer in exact arithmetic, the cap guards rounding).
        start: optional weights to start from (a warm start; their positive
            entries are the first support, whose gradients must be affinely
            independent, as the support of an answer of this solver is, also
            after a common shift of all gradients; duplicated gradients are
            not). Default: the smallest gradient.

    Returns:
        `a` (K weights, summing to 1, zero outside `available`; all 0 when no task is
        available) and the residual: the
        largest violation of the optimality conditions, as a cosine (the left-hand
        side above, negated, and `|(g_k - x) . x|` on the support, each divided by
        `||g_k|| ||x||`); 0 at the exact answer.
    """
    k = gram.shape[0]
    # The K x K work is in float64 where the backend has it, for gradients at
    # small angles (the cosine matrix's condition number).
    out_dtype, dtype = gram.dtype, "float64"
    gram = ops.cast(gram, dtype)
    if available is None:
        available = ops.ones((k,), "bool")
    max_iterations = 10 * k + 10 if max_iterations is None else max_iterations
    norms, unit_gram = unit_gramian(gram)
    usable = available & (norms > 0)
    # Without a usable task (all absent, or all gradients zero) the loop runs on a
    # stand-in problem, the identity, and the answer is set at the end.
    degenerate = ~ops.any(usable)
    usable = usable | degenerate
    norms = ops.where(degenerate, ops.ones_like(norms), norms)
    unit_gram = ops.where(degenerate, ops.eye(k, dtype=dtype), unit_gram)
    # The bordered system's last column is 1/||g_k||; any positive multiple gives
    # the same weights after normalisation, so it is divided by its largest entry.
    inverse_norms = ops.divide_no_nan(ops.ones_like(norms), norms)
    border = inverse_norms / ops.max(ops.where(usable, inverse_norms, 0.0))

    def affine_minimiser(support):
        """Weights (zero outside `support`, summing to 1) of the point of the affine
        hull of the support's gradients nearest the origin."""
        mask = ops.cast(support, dtype)
        system = unit_gram * mask[:, None] * mask[None, :] + ops.diag(1.0 - mask)
        column = border * mask
        bordered = ops.concatenate([
            ops.concatenate([system, column[:, None]], axis=1),
            ops.concatenate([column, ops.zeros((1,), dtype)])[None, :]], axis=0)
        right = ops.concatenate([ops.zeros((k,), dtype), ops.ones((1,), dtype)])
        scaled = ops.solve(bordered, right[:, None])[:k, 0] * mask
        weights = scaled * inverse_norms
        return weights / ops.sum(weights)

    def violations(weights):
        """Per task, `(g_k - x) . x / (||g_k|| ||x||)` and `||x||`."""
        scaled = weights * norms
        products = ops.matmul(unit_gram, scaled)  # g_k . x / ||g_k||
        squared = ops.sum(scaled * products)
        length = ops.sqrt(ops.maximum(squared, 0.0))
        return ops.divide_no_nan(products - ops.divide_no_nan(squared, norms), length), length

    def residual(weights, support):
        slack, _ = violations(weights)
        off = ops.where(usable & ~support, ops.maximum(-slack, 0.0), 0.0)
        on = ops.where(support, ops.abs(slack), 0.0)
        return ops.max(ops.maximum(off, on))

    def step(i, weights, support, done):
        target = affine_minimiser(support)
        feasible = ops.all(ops.where(support, target > 0, True))
        # Not feasible: move from `weights` towards `target` until a weight is 0.
        shrinking = support & (target <= 0)
        ratios = ops.where(shrinking, ops.divide_no_nan(weights, weights - target), 1.0)
        theta = ops.clip(ops.min(ratios), 0.0, 1.0)
        moved = weights + theta * (target - weights)
        kept = support & ~(shrinking & (ratios <= theta))
        moved = ops.where(kept, moved, 0.0)
        moved = moved / ops.sum(moved)
        # Feasible: take the target, then add the most violating task or stop.
        slack, _ = violations(target)
        candidates = usable & ~support & (slack < -tolerance)
        entering = ops.argmin(ops.where(candidates, slack, float("inf")))
        optimal = ~ops.any(candidates)
        grown = support | (ops.one_hot(entering, k) > 0)
        new_weights = ops.where(feasible, target, moved)
        new_support = ops.where(feasible, ops.where(optimal, support, grown), kept)
        return i + 1, new_weights, new_support, feasible & optimal

    smallest = ops.one_hot(ops.argmin(ops.where(usable, norms, float("inf"))), k, dtype=dtype)
    if start is None:
        start = smallest
    else:
        start = ops.where(usable, ops.maximum(ops.cast(start, dtype), 0.0), 0.0)
        total = ops.sum(start)
        start = ops.where(total > 0, start / ops.where(total > 0, total, 1.0), smallest)
    _, weights, support, _ = ops.while_loop(
        lambda i, w, s, done: ~done, step, (0, start, start > 0, ops.convert_to_tensor(False)),
        maximum_iterations=max_iterations)
    # A zero gradient among the available tasks is the nearest point itself; with
    # no available task every weight is 0.
    zero = available & (ops.diagonal(gram) <= 0)
    weights = ops.where(ops.any(zero), ops.one_hot(ops.argmax(zero), k, dtype=dtype), weights)
    weights = ops.where(ops.any(available), weights, 0.0)
    residual = ops.where(ops.any(zero) | ~ops.any(available), 0.0, residual(weights, support))
    return ops.cast(weights, out_dtype), ops.cast(residual, out_dtype)
