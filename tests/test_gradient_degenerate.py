"""Every gradient method on degenerate input, which is legal: duplicated, exactly
parallel, exactly opposed and zero task gradients, and 0 inside the convex hull
of the gradients, at gradient scales 1, 1e-10 and 1e10. Each method must return a
finite direction that is the exact solution of its own problem on that input,
checked against float64 references written from the papers
(`gradient_references`) on a float64 factor of the float32 Gramian the method
saw. Backend-agnostic: `tests/jax/test_gradient_degenerate_jax.py` runs the same
checks on JAX. Ends with a fit where two tasks have the same labels and the same
head, so that their gradients are identical at every step."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

import gradient_references as ref
import keras_mtl
from keras_mtl.weighting import AlignedMTL, CAGrad, FairGrad, GradDrop, GradVac, IMTL, MGDA, NashMTL, PCGrad
from keras_mtl.weighting.base import gramian
from keras_mtl.weighting.min_norm import hull_tolerance
from weighting_utils import compiled, float64_available

SCALES = (1.0, 1e-10, 1e10)


def degenerate_families(p=16, seed=0):
    """(name, K x P float64 matrix) for each degenerate family, at scale 1."""
    rng = np.random.default_rng(seed)
    g, h = rng.normal(size=(2, p))
    return [
        ("duplicated", np.stack([g, g])),
        ("duplicated-3", np.stack([g, h, g])),
        ("parallel", np.stack([g, 3.0 * g])),
        ("parallel-3", np.stack([g, 2.0 * g, h])),
        ("opposed", np.stack([g, -2.0 * g])),
        ("zero", np.stack([g, np.zeros(p), h])),
        # 0 = (0.5 g + 0.8 h + f) / 2.3 lies inside the hull of the three.
        ("zero-in-hull", np.stack([g, h, -(0.5 * g + 0.8 * h)])),
    ]


CASES = [(f"{name}-x{scale:g}", grads * scale)
         for scale in SCALES for name, grads in degenerate_families()]
IDS = [name for name, _ in CASES]


_SOLVERS = {}


def run(method, grads, present=None, reset=True):
    """`(weights, combined, residual, factor)` of `method` on the float32 `grads`;
    `factor` is a float64 K x K factor of the float32 Gramian it saw. One compiled
    function and one method per configuration and K, its state reset to the
    initial one (as a fresh method's) before each call."""
    k = len(grads)
    key = (type(method).__name__, repr(sorted(method.get_config().items())), k)
    if key not in _SOLVERS:
        method.build((k,))
        initial = [np.array(ops.convert_to_numpy(v)) for v in method.variables]

        def solve(grads, present):
            combined, weights = method.combine_gradients(grads, ops.ones((k,)), present)
            gram = gramian(grads)
            residual = ops.zeros(())
            if method.uses_gramian:
                residual = method.gramian_weights(gram, ops.ones((k,)), present)[1]
            return combined, weights, residual, gram

        _SOLVERS[key] = method, initial, compiled(solve, method.variables)
    method, initial, solve = _SOLVERS[key]
    for variable, value in zip(method.variables if reset else [], initial):
        variable.assign(value)
    present = np.ones(k, bool) if present is None else np.asarray(present)
    combined, weights, residual, gram = solve(ops.convert_to_tensor(np.asarray(grads, "float32")),
                                              ops.convert_to_tensor(present))
    weights = np.asarray(ops.convert_to_numpy(weights), "float64")
    combined = np.asarray(ops.convert_to_numpy(combined), "float64")
    assert np.all(np.isfinite(weights)) and np.all(np.isfinite(combined)), (weights, combined)
    return weights, combined, float(ops.convert_to_numpy(residual)), ref.gram_factor(ops.convert_to_numpy(gram))


def _scale(factor):
    return np.linalg.norm(factor, axis=1).max()


def check_mgda(grads):
    weights, _, _, factor = run(MGDA(), grads)
    k = len(grads)
    assert np.isclose(weights.sum(), k, rtol=1e-5)
    point, expected = weights / k @ factor, ref.min_norm_point(factor) @ factor
    assert np.linalg.norm(point - expected) <= 1e-5 * _scale(factor), (point, expected)


def check_cagrad(grads, c):
    weights, _, _, factor = run(CAGrad(c=c, rescale=0), grads)
    k = len(grads)
    d = weights / k @ factor
    g0 = factor.mean(axis=0)
    rho = c * np.linalg.norm(g0)
    value = ref.cagrad_value(factor, c)
    # In the ball around g0, and its worst task improvement is the optimum's.
    assert np.linalg.norm(d - g0) <= rho * (1 + 1e-5) + 1e-6 * np.linalg.norm(g0)
    assert abs(np.min(factor @ d) - value) <= 1e-4 * _scale(factor) * (np.linalg.norm(g0) + rho), (
        np.min(factor @ d), value)
    if c >= 1 and ref.min_norm_point(factor) @ factor @ (ref.min_norm_point(factor) @ factor) <= (
            1e-12 * _scale(factor) ** 2):
        # 0 in the hull and in the ball: d = 0.
        assert np.linalg.norm(d) <= 1e-5 * np.linalg.norm(g0), d


def check_imtl(grads):
    weights, _, _, factor = run(IMTL(), grads)
    k = len(grads)
    norms = np.linalg.norm(factor, axis=1)
    usable = norms > 1e-6 * norms.max()
    g = weights / k @ factor
    assert np.all(weights[~usable] == 0.0)
    # Equal projections on every (nonzero) task direction, and the sum of weights
    # is K unless g = 0 (opposed gradients).
    if np.linalg.norm(g) <= 1e-5 * np.linalg.norm(weights / k) * norms.max():
        return  # g = 0: exactly opposed gradients
    assert np.isclose(weights.sum(), k, rtol=1e-5), weights
    _, singular, _ = np.linalg.svd(factor[usable])
    expected = np.zeros(k)
    # (Ranks read with sqrt(float32 eps): the factor is of a float32 Gramian.)
    if singular.min() > 1e-3 * singular.max():
        expected[usable] = ref.imtl(factor[usable])  # the paper's closed form
    elif np.linalg.matrix_rank(factor[usable] / norms[usable, None], 1e-3) > 1:
        # Linearly dependent gradients that are not all parallel: the equal
        # projections have no solution or many (see IMTL's docstring).
        return
    else:
        # All parallel (duplicated): every direction of the line has equal
        # projections; the pseudo-inverse's is the sum of the unit gradients.
        expected[usable] = 1.0 / norms[usable] / np.sum(1.0 / norms[usable])
    assert ref.relative_error(g, expected @ factor) < 1e-5, (weights / k, expected)


def check_equation_method(method, grads, reference):
    """Nash-MTL or FairGrad against `reference(rows)` on the factor's nonzero rows:
    the weights (0 for zero gradients), the direction and the residual; where the
    reference has no solution (0 in the hull of the gradients), the previous weights,
    1, and an infinite residual."""
    weights, _, residual, factor = run(method, grads)
    norms = np.linalg.norm(factor, axis=1)
    usable = norms > 1e-6 * norms.max()
    expected = reference(factor[usable])
    if expected is None:
        np.testing.assert_array_equal(weights, 1.0)
        assert residual == np.inf
        return
    assert np.all(weights[~usable] == 0.0)
    assert ref.relative_error(weights[usable], expected) < 1e-5, (weights, expected)
    assert ref.relative_error(weights @ factor, expected @ factor[usable]) < 1e-5
    assert residual < 1e-5


def check_nash(grads, normalize_gramian):
    check_equation_method(NashMTL(max_norm=0.0, normalize_gramian=normalize_gramian), grads, lambda rows: ref.nash_mtl(
        rows, normalize_gramian=normalize_gramian, hull_floor=hull_tolerance("float32")))


def check_fairgrad(grads, alpha):
    check_equation_method(FairGrad(alpha=alpha), grads,
                          lambda rows: ref.fairgrad(rows, alpha, hull_floor=hull_tolerance("float32")))


def check_aligned_mtl(grads):
    weights, _, _, factor = run(AlignedMTL(), grads)
    # The rank of G: the nonzero singular values, read on the cosine matrix.
    norms = np.linalg.norm(factor, axis=1)
    units = factor[norms > 0] / norms[norms > 0, None]
    cosine_eigenvalues = np.linalg.eigvalsh(units @ units.T)
    rank = int(np.sum(cosine_eigenvalues > 1e-5 * cosine_eigenvalues.max()))
    expected = ref.aligned_mtl(factor, rank)
    assert np.linalg.norm((weights - expected) @ factor) <= 1e-5 * np.linalg.norm(expected @ factor) + (
        1e-6 * _scale(factor)), (weights, expected)


def _pcgrad_rows(factor, orders):
    rows = []
    for i, order in enumerate(orders):
        row = factor[i].copy()
        for j in order:
            product = row @ factor[j]
            if product < 0:
                row = row - product / (factor[j] @ factor[j]) * factor[j]
        rows.append(row)
    return np.sum(rows, axis=0)


def check_projection(make, grads):
    """PCGrad, and GradVac's first step (zero targets: PCGrad's projections):
    the sum of each task's gradient projected in some random order."""
    weights, _, _, factor = run(make(), grads)
    k = len(grads)
    # Each row's order runs over every task, itself included, as in the paper.
    others = [[j for j in range(k) if factor[j] @ factor[j] > 0] for i in range(k)]
    candidates = [_pcgrad_rows(factor, orders)
                  for orders in itertools.product(*(itertools.permutations(o) for o in others))]
    errors = [np.linalg.norm(weights @ factor - c) for c in candidates]
    assert min(errors) <= 1e-5 * _scale(factor) * k, errors


def check_graddrop(grads):
    """Each coordinate of the sum keeps the task gradients of one sign (or all,
    where the signs agree or all are zero)."""
    k = len(grads)
    method = GradDrop(seed=3)
    method.build((k,))
    grads32 = np.asarray(grads, "float32")
    combined, _ = method.combine_gradients(ops.convert_to_tensor(grads32), ops.ones((k,)))
    combined = np.asarray(ops.convert_to_numpy(combined), "float64")
    assert np.all(np.isfinite(combined))
    g = grads32.astype("float64")
    positive, negative = np.where(g > 0, g, 0).sum(0), np.where(g < 0, g, 0).sum(0)
    scale = np.abs(g).sum(0) * 1e-5 + 1e-30
    ok = ((np.abs(combined - positive) <= scale) | (np.abs(combined - negative) <= scale)
          | (np.abs(combined - positive - negative) <= scale))
    assert np.all(ok)


CHECKS = {
    "mgda": check_mgda,
    "cagrad-c0.5": lambda grads: check_cagrad(grads, 0.5),
    "cagrad-c1": lambda grads: check_cagrad(grads, 1.0),
    "cagrad-c2": lambda grads: check_cagrad(grads, 2.0),
    "imtl": check_imtl,
    "nash_mtl": lambda grads: check_nash(grads, False),
    "nash_mtl-normalized": lambda grads: check_nash(grads, True),
    "aligned_mtl": check_aligned_mtl,
    "fairgrad-a0.5": lambda grads: check_fairgrad(grads, 0.5),
    "fairgrad-a1": lambda grads: check_fairgrad(grads, 1.0),
    "fairgrad-a3": lambda grads: check_fairgrad(grads, 3.0),
    "pcgrad": lambda grads: check_projection(lambda: PCGrad(seed=2), grads),
    "gradvac": lambda grads: check_projection(lambda: GradVac(seed=2), grads),
    "graddrop": check_graddrop,
}


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(CHECKS))
def test_every_gradient_method_solves_degenerate_input(method):
    for name, grads in CASES:
        try:
            CHECKS[method](grads)
        except Exception as error:
            raise AssertionError(f"{method} on {name}: {error}") from error


def test_the_checks_cover_every_gradient_method():
    from keras_mtl.weighting.base import GradientWeighting
    from keras_mtl.weighting.registry import _REGISTRY

    gradient_methods = {name for name, cls in _REGISTRY.items() if issubclass(cls, GradientWeighting)}
    # These run the same degenerate families (gradient_references.hard_cases) against
    # their own float64 references in tests/test_weighting_<name>.py.
    checked_in_their_own_files = {"config", "cr_mogm", "db_mtl", "dualproj", "excess_mtl", "krum", "moco", "trimmed_mean", "upgrad"}
    assert gradient_methods == {name.split("-")[0] for name in CHECKS} | checked_in_their_own_files


# ------------------------------------------------------------ the reported defects


def test_cagrad_with_duplicated_gradients_is_the_single_task_direction():
    """Two identical gradients: the problem is that of one task, whose optimum
    in the ball around g0 = g is d = (1 + c) g (TensorFlow raised "Input matrix
    is not invertible"; JAX returned NaN)."""
    g = degenerate_families()[0][1][0]
    for c in (0.4, 0.9):
        weights, _, _, factor = run(CAGrad(c=c, rescale=0), np.stack([g, g]))
        np.testing.assert_allclose(weights / 2 @ factor, (1 + c) * factor[0], rtol=1e-5, atol=1e-6 * _scale(factor))


def test_cagrad_c_above_one_with_zero_in_the_hull_is_zero():
    """0 in the convex hull and in the ball (c >= 1): the optimum is d = 0, which
    conflicts with no task (TorchJD's non-conflicting property)."""
    grads = dict(degenerate_families())["zero-in-hull"]
    for c in (1.0, 1.5, 3.0):
        weights, _, _, factor = run(CAGrad(c=c, rescale=0), grads)
        d = weights @ factor
        assert np.all(factor @ d >= -1e-6 * _scale(factor) * np.linalg.norm(factor.mean(0)))
        assert np.linalg.norm(d) <= 1e-5 * np.linalg.norm(factor.mean(0))


@pytest.mark.parametrize("scale", [1e-10, 1e10])
@pytest.mark.parametrize("normalize_gramian", [False, True])
def test_nash_mtl_at_extreme_gradient_scales(scale, normalize_gramian):
    """The Frobenius norm of the float32 Gramian's squares under- or overflows
    at these scales: the weights must still be the float64 reference's."""
    grads = ref.scaled_family(3, 4, 10.0).astype("float64") * scale
    weights, _, residual, factor = run(NashMTL(max_norm=0.0, normalize_gramian=normalize_gramian), grads)
    expected = ref.nash_mtl(factor, normalize_gramian=normalize_gramian)
    assert ref.relative_error(weights, expected) < 1e-5, (weights, expected)
    assert residual < 1e-5


def test_nash_mtl_without_a_solution_keeps_the_previous_weights():
    """Exactly opposed gradients (rank 1): no direction improves both tasks; the
    weights of the previous step are kept and the residual is infinite."""
    method = NashMTL(max_norm=0.0)
    good = ref.scaled_family(2, 1, 3.0)
    first, _, _, _ = run(method, good)
    g = good[0]
    weights, _, residual, _ = run(method, np.stack([g, -g]), reset=False)
    np.testing.assert_allclose(weights, first, rtol=1e-6)
    assert residual == np.inf


def test_nash_mtl_normalized_weights_are_sqrt_frobenius_times_the_papers():
    grads = ref.scaled_family(4, 2, 100.0)
    paper, _, _, factor = run(NashMTL(max_norm=0.0), grads)
    normalized, _, _, _ = run(NashMTL(max_norm=0.0, normalize_gramian=True), grads)
    frobenius = np.linalg.norm(factor @ factor.T)
    np.testing.assert_allclose(normalized, np.sqrt(frobenius) * paper, rtol=1e-5)
    # The paper's weights give ||d||^2 = a^T G G^T a = K.
    assert np.isclose(np.sum((paper @ factor) ** 2), 4, rtol=1e-5)


def test_imtl_with_a_zero_gradient_scales_by_every_present_task():
    """A present task with a zero gradient still counts in K (the weights sum to
    the number of present tasks), as for any other present task."""
    grads = dict(degenerate_families())["zero"]
    weights, _, _, factor = run(IMTL(), grads)
    assert weights[1] == 0.0
    np.testing.assert_allclose(weights.sum(), 3.0, rtol=1e-6)
    expected = ref.imtl(factor[[0, 2]])
    np.testing.assert_allclose(weights[[0, 2]] / 3, expected, rtol=1e-5)


# ----------------------------------------------------------------- end to end


GRADIENT_METHODS = ["aligned_mtl", "cagrad", "fairgrad", "graddrop", "gradvac", "imtl", "mgda", "nash_mtl", "pcgrad"]


def fit_identical_tasks(weighting, gradient_mode="shared_parameters", steps=12):
    """Two tasks with the same labels and the same head (same initial weights):
    their gradients are identical at every step. One batch per epoch (the JAX
    trainer syncs the variables at epoch ends), `steps` epochs. Returns the
    shared kernel after each step and the history."""
    def head(name):
        return keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(0.1), name=name)

    tasks = [keras_mtl.Task(name, head=head(f"{name}_out"), loss="mse") for name in ("a", "b")]
    model = keras_mtl.build("hard_sharing", tasks, backbone="mlp", input_shape=(4,))
    method = keras_mtl.weighting.get(weighting)
    method = type(method).from_config({**method.get_config(), "gradient_mode": gradient_mode})
    model.compile(optimizer=keras.optimizers.SGD(0.05), weighting=method, on_nonfinite="skip")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 1.0], "float32"))[:, None]
    kernels = []
    shared = model.shared_variables[0]
    callback = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: kernels.append(np.array(ops.convert_to_numpy(shared))))
    history = model.fit(x, {"a": y, "b": y}, batch_size=16, epochs=steps, verbose=0, shuffle=False,
                        callbacks=[callback])
    return kernels, history.history


def check_identical_tasks_train(weighting, gradient_mode):
    kernels, history = fit_identical_tasks(weighting, gradient_mode)
    assert len(kernels) == 12
    for before, after in zip(kernels, kernels[1:]):
        assert not np.array_equal(before, after), "a step was skipped"
    assert np.all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < history["loss"][0], history["loss"]


@pytest.mark.parametrize("gradient_mode", ["shared_parameters", "representation"])
@pytest.mark.parametrize("weighting", GRADIENT_METHODS)
def test_identical_tasks_train_every_step(weighting, gradient_mode):
    check_identical_tasks_train(weighting, gradient_mode)


def test_nash_mtl_configuration_without_normalize_gramian_keeps_the_normalised_form():
    config = NashMTL(update_weights_every=3).get_config()
    assert NashMTL.from_config(config).normalize_gramian is False
    del config["normalize_gramian"]
    restored = NashMTL.from_config(config)
    assert restored.normalize_gramian is True and restored.update_weights_every == 3


@pytest.mark.parametrize("normalize_gramian", [False, True])
def test_nash_mtl_solves_nearly_opposed_gradients(normalize_gramian):
    """Two tasks at cosine -1 + 1e-5 have a solution (its weights about 1 / sqrt(1e-5)
    in the cosine basis, past what float32's rounding bounds): 0 is well outside the
    convex hull of the unit gradients (the nearest point at distance 2.2e-3, squared
    20 times float32's epsilon), so it is solved, not replaced by the previous weights."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 16))
    a /= np.linalg.norm(a)
    b -= (b @ a) * a
    b /= np.linalg.norm(b)
    cosine = -1.0 + 1e-5
    grads = np.stack([a, 2.0 * (cosine * a + np.sqrt(1 - cosine ** 2) * b)])
    weights, _, residual, factor = run(NashMTL(max_norm=0.0, normalize_gramian=normalize_gramian), grads)
    expected = ref.nash_mtl(factor, normalize_gramian=normalize_gramian)
    assert expected is not None
    # K x K work in float32 (JAX without x64) loses 1 / (1 + cosine) = 1e5 times its
    # epsilon in the products `C c` (and in the residual).
    tolerance = 1e-5 if float64_available() else 1e5 * np.finfo("float32").eps
    assert ref.relative_error(weights, expected) < tolerance, (weights, expected)
    assert residual < tolerance
