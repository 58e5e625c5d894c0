"""Float64 references of the gradient methods, written from the papers' definitions,
and seeded families of hard task-gradient matrices (ill-conditioned, opposed).

The references solve each method's defining problem exactly (enumeration of the
simplex's faces, closed forms, Newton to float64 precision) on the float32 input
upcast to float64, so a method's error is its own, not the input's rounding.
"""

import itertools

import numpy as np


# --------------------------------------------------------------------- families


def scaled_family(k, seed, ratio, p=48):
    """K random gradients (a shared component, so some agree and some conflict) with
    norms spread log-uniformly over `ratio` (the largest / the smallest)."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(k, p)) + 0.5 * rng.normal(size=p)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    exponents = np.concatenate([[0.0, 1.0], rng.uniform(0, 1, size=k - 2)])
    norms = ratio ** rng.permutation(exponents)
    return (directions * norms[:, None] * 0.1).astype("float32")


def opposed_family(k, seed, cosine, ratio=1.0, p=48):
    """Two groups of tasks whose directions have cosine `cosine` across the groups
    (each task a little off its group's direction), norms spread over `ratio`."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=p)
    a /= np.linalg.norm(a)
    b = rng.normal(size=p)
    b -= (b @ a) * a
    b /= np.linalg.norm(b)
    other = cosine * a + np.sqrt(1 - cosine ** 2) * b
    groups = [a if i % 2 == 0 else other for i in range(k)]
    noise = rng.normal(size=(k, p))
    directions = np.stack(groups) + 0.05 * noise / np.linalg.norm(noise, axis=1, keepdims=True)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    norms = ratio ** rng.uniform(0, 1, size=k)
    return (directions * norms[:, None]).astype("float32")


def stress_cases():
    """(name, K x P float32 matrix): the stress families the tests sweep."""
    cases = []
    for k in (2, 3, 5, 8, 10):
        for ratio in (1e2, 1e3, 1e4):
            for seed in range(2):
                cases.append((f"scaled-k{k}-r{ratio:g}-s{seed}", scaled_family(k, seed + 10 * k, ratio)))
        for cosine in (-0.9, -0.99, -0.999):
            cases.append((f"opposed-k{k}-c{cosine}", opposed_family(k, k, cosine)))
        cases.append((f"opposed-k{k}-c-0.99-r100", opposed_family(k, k + 1, -0.99, ratio=100.0)))
    return cases


# ----------------------------------------------------------------- references


def _faces(k):
    for size in range(1, k + 1):
        yield from itertools.combinations(range(k), size)


def _affine_min_norm(points):
    """The point of the affine hull of the rows nearest the origin, and its affine
    weights (None when the rows are affinely dependent)."""
    m = len(points)
    gram = points @ points.T
    system = np.block([[gram, np.ones((m, 1))], [np.ones((1, m)), np.zeros((1, 1))]])
    if np.linalg.cond(system) > 1e12:
        return None, None
    solution = np.linalg.solve(system, np.concatenate([np.zeros(m), [1.0]]))
    return solution[:m] @ points, solution[:m]


def min_norm_point(grads):
    """MGDA (Sener and Koltun 2018): the weights `a` on the simplex minimising
    `||sum_k a_k g_k||`, by checking every face of the simplex: the answer is the
    affine-hull minimiser of the face whose weights are all positive and that has
    the smallest norm."""
    grads = _unit_scale(grads)
    best, best_weights = np.inf, None
    for face in _faces(len(grads)):
        point, weights = _affine_min_norm(grads[list(face)])
        if weights is None or np.any(weights < -1e-12):
            continue
        norm = point @ point
        if norm < best:
            best, full = norm, np.zeros(len(grads))
            full[list(face)] = weights
            best_weights = full
    return best_weights


def cagrad(grads, c):
    """CAGrad (Liu et al. 2021): `w` on the simplex minimising
    `F(w) = g_w . g0 + rho ||g_w||`, `rho = c ||g0||`, by checking every face: on a
    face's affine hull, with `x = p + Q y` (`p` its point nearest the origin, `Q` an
    orthonormal basis of its directions, `q = Q^T g0`), `F` is `q . y + rho
    sqrt(|p|^2 + |y|^2)` up to a constant, minimised at `y = -|p| q / sqrt(rho^2 -
    |q|^2)` (when `|q| < rho`). Returns `(w, d)`, `d = g0 + rho g_w / ||g_w||`."""
    best_w, _ = _cagrad_dual(grads, c)
    grads = np.asarray(grads, "float64")
    g0 = grads.mean(axis=0)
    g_w = best_w @ grads
    return best_w, g0 + c * np.linalg.norm(g0) * g_w / np.linalg.norm(g_w)


def cagrad_value(grads, c):
    """The optimum of CAGrad's problem, `max min_k g_k . d` over the ball
    `||d - g0|| <= c ||g0||`: by strong duality the minimum of `F` (`cagrad`)."""
    return _cagrad_dual(grads, c)[1]


def _cagrad_dual(grads, c):
    """`(w, F(w))` at the minimiser of `F` (see `cagrad`), by checking every face."""
    scale = np.linalg.norm(np.asarray(grads, "float64"), axis=1).max()
    grads = _unit_scale(grads)
    k = len(grads)
    g0 = grads.mean(axis=0)
    rho = c * np.linalg.norm(g0)
    best, best_w = np.inf, None
    for face in _faces(k):
        rows = grads[list(face)]
        p, _ = _affine_min_norm(rows)
        if p is None:
            continue
        if len(face) == 1:
            x = rows[0]
        else:
            basis, singular, _ = np.linalg.svd((rows[1:] - rows[0]).T, full_matrices=False)
            basis = basis[:, singular > 1e-12 * singular.max()]
            q = basis.T @ g0
            if q @ q >= rho * rho:
                continue
            x = p - np.linalg.norm(p) * (basis @ q) / np.sqrt(rho * rho - q @ q)
        weights = np.linalg.lstsq(np.vstack([rows.T, np.ones(len(face))]), np.append(x, 1.0),
                                  rcond=None)[0]
        if np.any(weights < -1e-12):
            continue
        value = g0 @ x + rho * np.linalg.norm(x)
        if value < best:
            best, best_w = value, np.zeros(k)
            best_w[list(face)] = weights
    return best_w, best * scale ** 2


def imtl(grads):
    """IMTL-G (Liu et al. 2021), the paper's closed form:
    `a_{2:K} = g_1 U^T (D U^T)^{-1}`, rows `D_k = g_1 - g_k`, `U_k = u_1 - u_k`,
    `a_1 = 1 - sum a_{2:K}`. Returns `a` (summing to 1)."""
    grads = np.asarray(grads, "float64")
    units = grads / np.linalg.norm(grads, axis=1, keepdims=True)
    d = grads[0] - grads[1:]
    u = units[0] - units[1:]
    rest = np.linalg.solve((d @ u.T).T, u @ grads[0])
    return np.concatenate([[1 - rest.sum()], rest])


def nash_mtl(grads, normalize_gramian=False, iterations=400, largest=None):
    """Nash-MTL (Navon et al. 2022): `a > 0` with `M a = 1 / a`, `M` the Gramian
    (the paper's equation; divided by its Frobenius norm with `normalize_gramian`),
    by damped Newton on `a^T M a / 2 - sum log a` to float64 precision, with the
    Newton system as `(D M D + I) (delta / a) = -D gradient`, `D = diag(a)`. None
    when there is no solution (0 in the convex hull of the gradients: the iterates
    grow without bound, or past `largest` in the cosine basis)."""
    grads = np.asarray(grads, "float64")
    scale = np.linalg.norm(grads, axis=1).max()
    gram = (grads / scale) @ (grads / scale).T
    if normalize_gramian:
        gram /= np.linalg.norm(gram)
    a = np.ones(len(grads)) / np.sqrt(max(np.sum(gram), 1e-300))
    for _ in range(iterations):
        gradient = gram @ a - 1 / a
        system = a[:, None] * gram * a[None, :] + np.eye(len(a))
        delta = -a * np.linalg.solve(system, a * gradient)
        decrement = np.sqrt(max(-gradient @ delta, 0.0))
        a = a + delta / (1 + decrement)
        if decrement < 1e-15 or a.max() > 1e6:
            break
    if np.max(np.abs(a * (gram @ a) - 1)) > 1e-9:
        return None
    # In the cosine basis (`c = a n` for the paper's equation) a solution beyond
    # `largest` exists or not by the float32 rounding of the Gramian: None.
    paper = a / np.sqrt(np.linalg.norm((grads / scale) @ (grads / scale).T)) if normalize_gramian else a
    if largest is not None and np.max(paper * np.linalg.norm(grads / scale, axis=1)) > largest:
        return None
    return a if normalize_gramian else a / scale


def aligned_mtl(grads, rank=None):
    """Aligned-MTL (Senushkin et al. 2023): with `G = U S V^T`, the aligned gradients
    `s_min U V^T` summed: weights `s_min U S^{-1} U^T 1` (from the SVD of `G` itself,
    not its Gramian), over the `rank` largest singular values (all by default)."""
    grads = np.asarray(grads, "float64")
    u, s, _ = np.linalg.svd(grads, full_matrices=False)
    rank = len(s) if rank is None else rank
    u, s = u[:, :rank], s[:rank]
    return s.min() * u @ ((u.T @ np.ones(len(grads))) / s)


def _unit_scale(grads):
    """The gradients divided by the largest norm: the references' tolerances on
    conditioning are then independent of the gradients' scale."""
    grads = np.asarray(grads, "float64")
    return grads / np.linalg.norm(grads, axis=1).max()


def relative_error(value, reference):
    value, reference = np.asarray(value, "float64"), np.asarray(reference, "float64")
    return np.linalg.norm(value - reference) / np.linalg.norm(reference)


def gram_factor(gram):
    """A K x K float64 matrix `F` with `F F^T` equal to `gram`, the float32 Gramian
    a method computed: references on `F` are exact for the Gramian the method sees,
    so their difference measures the method alone, not the Gramian's rounding."""
    gram = np.asarray(gram, "float64")
    gram = (gram + gram.T) / 2
    values, vectors = np.linalg.eigh(gram)
    return vectors * np.sqrt(np.maximum(values, 0.0))


def hard_cases():
    """(name, K x P float32 matrix, present K booleans): the inputs that break solvers,
    beyond `stress_cases`: rank-deficient, exactly duplicated and exactly parallel
    gradients, a zero gradient, an absent task, 0 in the convex hull, gradient scales
    of 1e-10 and 1e10."""
    rng = np.random.default_rng(7)
    base = scaled_family(4, 5, 10.0)
    low_rank = (rng.normal(size=(5, 2)) @ rng.normal(size=(2, 48))).astype("float32")
    duplicated = np.concatenate([base, base[1:2]])
    parallel = np.concatenate([base, 3 * base[2:3]])
    zero_row = np.insert(base, 1, 0.0, axis=0)
    hull = np.concatenate([base[:2], -base[:2] - 0.1 * base[2:3]])
    every = np.ones(len(base), bool)
    spanning = (rng.normal(size=(6, 3)) * rng.uniform(0.1, 3, size=(6, 1))).astype("float32")
    return [
        ("k6-in-r3", spanning, np.ones(6, bool)),
        ("rank2-k5", low_rank, np.ones(5, bool)),
        ("duplicated", duplicated, np.ones(5, bool)),
        ("parallel", parallel, np.ones(5, bool)),
        ("zero-row", zero_row, np.ones(5, bool)),
        ("absent", zero_row, np.array([True, False, True, True, True])),
        ("zero-in-hull", hull, np.ones(4, bool)),
        ("scale-1e-10", (base * 1e-10).astype("float32"), every),
        ("scale-1e10", (base * 1e10).astype("float32"), every),
    ]


def dual_cone_projection(grads, bounds):
    """The weights `v` of the projection of `J^T b` onto the dual cone `{x : J x >= 0}`
    of the rows of `J = grads` (Quinton and Rey 2024, Proposition 1: `J^T v` with `v`
    minimising `v^T J J^T v` subject to `v >= b`). The projection is `x = J^T b + J^T
    mu`, `mu >= 0` minimising `||J^T b + J^T mu||` (the dual of the projection's
    problem), a non-negative least squares problem solved by scipy's Lawson-Hanson."""
    from scipy.optimize import nnls

    grads = np.asarray(grads, "float64")
    bounds = np.asarray(bounds, "float64")
    norms = np.linalg.norm(grads, axis=1)
    # A zero gradient (to the float32 Gramian's rounding) adds nothing to J^T v: its
    # weight stays at its bound.
    rows = norms > 1e-6 * norms.max()
    mu = np.zeros(len(grads))
    mu[rows], _ = nnls(grads[rows].T / norms.max(), -grads.T @ bounds / norms.max(), maxiter=100 * len(grads))
    return bounds + mu


def upgrad(grads):
    """UPGrad (Quinton and Rey 2024): `sum_i pi_J(g_i)`, the weights `sum_i v_i` of
    the projections of each gradient onto the dual cone."""
    k = len(grads)
    return sum(dual_cone_projection(grads, np.eye(k)[i]) for i in range(k))


def dualproj(grads):
    """DualProj: the weights of the projection of the summed gradient onto the dual cone."""
    return dual_cone_projection(grads, np.ones(len(grads)))


def config(grads, rcond):
    """ConFIG (Liu et al. 2024, equation 2): `g_u = U^+ 1 / ||U^+ 1||` for the unit
    gradients `U` (zero rows stay 0), `combined = (sum_k g_k . g_u) g_u`, with the
    pseudo-inverse's singular values cut below `rcond` times the largest. Returns the
    weights `w` of `combined = w^T grads` (least squares in the row space)."""
    grads = np.asarray(grads, "float64")
    norms = np.linalg.norm(grads, axis=1)
    # A zero gradient (to the float32 Gramian's rounding) has no direction.
    nonzero = norms[:, None] > 1e-6 * norms.max()
    units = np.divide(grads, norms[:, None], out=np.zeros_like(grads), where=nonzero)
    direction = np.linalg.pinv(units, rcond=rcond) @ np.ones(len(grads))
    direction /= np.linalg.norm(direction)
    combined = np.sum(grads @ direction) * direction
    return np.linalg.lstsq(grads.T, combined, rcond=None)[0]


def krum(grads, n_byzantine, n_selected=1, squared=True):
    """Multi-Krum (Blanchard et al. 2017): each gradient's score is the sum of its
    squared distances (`squared=False`: distances, as TorchJD) to its `n - f - 2`
    nearest others; the mean of the `n_selected` lowest-scoring gradients, ties to the
    lower index. Returns the mean's weights."""
    grads = np.asarray(grads, "float64")
    n = len(grads)
    distances = np.linalg.norm(grads[:, None] - grads[None], axis=2)
    if squared:
        distances = distances ** 2
    scores = [np.sort(np.delete(distances[i], i))[:n - n_byzantine - 2].sum() for i in range(n)]
    weights = np.zeros(n)
    weights[np.argsort(scores, kind="stable")[:n_selected]] = 1.0 / n_selected
    return weights


def trimmed_mean(grads, trim_number):
    """Coordinate-wise trimmed mean (Yin et al. 2018): per coordinate, the mean of the
    values left after dropping the `trim_number` largest and smallest."""
    ordered = np.sort(np.asarray(grads, "float64"), axis=0)
    return ordered[trim_number:len(ordered) - trim_number].mean(axis=0)
