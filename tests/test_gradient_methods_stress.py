"""The gradient methods on hard inputs: task gradients whose norms differ up to 1e4
times (Gramian condition numbers up to 1e8) and groups of opposed tasks (cosines
down to -0.999), K = 2..10, against float64 references written from the papers
(`gradient_references`), plus each solution's optimality conditions checked
independently, and absent tasks."""

import numpy as np
import pytest
import tensorflow as tf

import gradient_references as ref
from keras_mtl.weighting import AlignedMTL, CAGrad, GradVac, IMTL, MGDA, NashMTL, PCGrad
from keras_mtl.weighting.base import gramian

CASES = ref.stress_cases()
TOLERANCE = 1e-4


class _Solver:
    """Runs a method on K x P float32 matrices in compiled functions (one per K, as in
    training) and returns `(weights, residual, factor)`: the method's weights, its
    residual, and a float64 factor of the float32 Gramian it saw (`ref.gram_factor`),
    so that references measure the method alone, not the Gramian's rounding."""

    def __init__(self, make):
        self.make, self.functions = make, {}

    def __call__(self, grads, present=None):
        k = grads.shape[0]
        if k not in self.functions:
            method = self.make()
            if not method.built:
                method.build((k,))

            @tf.function
            def solve(grads, present):
                combined, weights = method.combine_gradients(grads, tf.ones(k), present)
                gram = gramian(grads)
                return weights, method.gramian_weights(gram, tf.ones(k), present)[1], gram

            self.functions[k] = solve
        present = np.ones(k, bool) if present is None else np.asarray(present)
        weights, residual, gram = self.functions[k](tf.constant(grads, "float32"), tf.constant(present))
        return weights.numpy().astype("float64"), float(residual), ref.gram_factor(gram.numpy())


def _solve(method, grads, present=None):
    return _Solver(lambda: method)(grads, present)


def _check(name, weights, expected_weights, factor):
    """Weights and combined direction within TOLERANCE relative of the reference.
    `factor` has the float32 Gramian's inner products (see `ref.gram_factor`)."""
    errors = (ref.relative_error(weights, expected_weights),
              ref.relative_error(weights @ factor, expected_weights @ factor))
    assert max(errors) < TOLERANCE, (name, errors, weights, expected_weights)


def _each_case(make, cases=CASES):
    solver = _Solver(make)
    for name, grads in cases:
        yield (name, grads) + solver(grads)


def test_mgda_is_the_min_norm_point():
    for name, grads, weights, residual, factor in _each_case(MGDA):
        _check_mgda(name, len(grads), weights, residual, factor)


def _check_mgda(name, k, weights, residual, factor):
    expected = ref.min_norm_point(factor)
    _check(name, weights / k, expected, factor)
    # Optimality (Sener and Koltun, KKT of the min-norm problem): with x the point,
    # g_k . x >= x . x for every task, with equality where a_k > 0.
    x = weights / k @ factor
    products = factor @ x
    scale = np.linalg.norm(factor, axis=1) * np.linalg.norm(x)
    assert np.all((products - x @ x) / scale > -1e-5), name
    assert np.all(np.abs(products - x @ x)[weights > 1e-6] / scale[weights > 1e-6] < 1e-5)
    assert residual < 1e-5, (name, residual)


@pytest.mark.parametrize("c", [0.2, 0.5, 0.9])
def test_cagrad_is_the_conflict_averse_direction(c):
    for name, grads, weights, residual, factor in _each_case(lambda: CAGrad(c=c, rescale=0), CASES[c > 0.3::2]):
        _check_cagrad(name, len(grads), c, weights, residual, factor)


def _check_cagrad(name, k, c, weights, residual, factor):
    _, direction = ref.cagrad(factor, c)
    d = weights / k @ factor
    assert ref.relative_error(d, direction) < TOLERANCE, (name, ref.relative_error(d, direction))
    # The primal: d is in the ball around g0, and its worst task improvement
    # min_k g_k . d is the optimum's.
    g0 = factor.mean(axis=0)
    assert np.linalg.norm(d - g0) <= c * np.linalg.norm(g0) * (1 + 1e-5)
    worst, best = np.min(factor @ d), np.min(factor @ direction)
    assert abs(worst - best) <= 1e-4 * np.linalg.norm(factor, axis=1).max() * np.linalg.norm(direction)
    assert residual < 1e-3, (name, residual)


def test_imtl_equal_projections():
    for name, grads, weights, residual, factor in _each_case(IMTL):
        _check_imtl(name, len(grads), weights, residual, factor)


def _check_imtl(name, k, weights, residual, factor):
    _check(name, weights / k, ref.imtl(factor), factor)
    # The defining condition: g . u_k is the same for every task.
    g = weights / k @ factor
    projections = factor @ g / np.linalg.norm(factor, axis=1)
    assert np.ptp(projections) < 1e-4 * np.linalg.norm(g)
    assert residual < 1e-4, (name, residual)


@pytest.mark.parametrize("normalize_gramian", [False, True])
def test_nash_mtl_solves_the_bargaining_equation(normalize_gramian):
    make = lambda: NashMTL(max_norm=0.0, normalize_gramian=normalize_gramian)  # noqa: E731
    for name, grads, weights, residual, factor in _each_case(make):
        _check_nash(name, weights, residual, factor, normalize_gramian)


def _check_nash(name, weights, residual, factor, normalize_gramian):
    _check(name, weights, ref.nash_mtl(factor, normalize_gramian), factor)
    # The defining condition: (G G^T a)_k a_k = 1 (on the Frobenius-normalised
    # Gramian with `normalize_gramian`).
    gram = factor @ factor.T
    if normalize_gramian:
        gram /= np.linalg.norm(gram)
    assert np.max(np.abs(weights * (gram @ weights) - 1)) < 1e-4
    assert residual < 1e-4, (name, residual)


def test_aligned_mtl_aligns_the_singular_values():
    for name, grads, weights, _, factor in _each_case(AlignedMTL):
        _check(name, weights, ref.aligned_mtl(factor), factor)


@pytest.mark.parametrize("make", [MGDA, lambda: CAGrad(rescale=0), IMTL, lambda: NashMTL(max_norm=0.0),
                                  AlignedMTL, lambda: PCGrad(seed=1), lambda: GradVac(seed=1)],
                         ids=["mgda", "cagrad", "imtl", "nash_mtl", "aligned_mtl", "pcgrad", "gradvac"])
def test_absent_task_is_left_out(make):
    """A task without labels has a zero gradient row: its weight is 0 and the
    others' are those of the method on the present tasks alone."""
    grads = ref.scaled_family(4, 3, 100.0)
    with_absent = np.insert(grads, 2, 0.0, axis=0)
    weights = _solve(make(), with_absent, present=[True, True, False, True, True])[0]
    alone = _solve(make(), grads)[0]
    assert weights[2] == 0.0
    np.testing.assert_allclose(np.delete(weights, 2), alone, rtol=1e-5, atol=1e-7)


def test_gradvac_keeps_the_targets_of_absent_tasks():
    method = GradVac(beta=0.5, seed=0)
    grads = ref.scaled_family(3, 1, 10.0)
    _solve(method, grads)
    before = method.targets.numpy()
    _solve(method, np.insert(grads[:2], 2, 0.0, axis=0), present=[True, True, False])
    after = method.targets.numpy()
    np.testing.assert_array_equal(after[2], before[2])
    np.testing.assert_array_equal(after[:, 2], before[:, 2])
    assert not np.array_equal(after[:2, :2], before[:2, :2])


def test_nash_mtl_reports_opposed_gradients_it_cannot_solve():
    """Exactly opposed gradients have no bargaining solution: the residual says so."""
    g = ref.scaled_family(2, 0, 1.0)[0]
    weights, residual, _ = _solve(NashMTL(max_norm=0.0), np.stack([g, -g]))
    assert not residual <= NashMTL.residual_bound
    assert np.all(np.isfinite(weights))


@pytest.mark.parametrize("make", [MGDA, CAGrad, IMTL, NashMTL, AlignedMTL, PCGrad, GradVac],
                         ids=["mgda", "cagrad", "imtl", "nash_mtl", "aligned_mtl", "pcgrad", "gradvac"])
def test_no_present_task_gives_zero_weights(make):
    """A batch with no labels at all: zero gradient rows, nothing to weigh."""
    weights, residual, _ = _solve(make(), np.zeros((3, 8), "float32"), present=[False] * 3)
    np.testing.assert_array_equal(weights, 0.0)
    assert np.isfinite(residual)
