"""Gradient-manipulation methods (MGDA, PCGrad, CAGrad, IMTL-G, Nash-MTL, Aligned-MTL,
GradVac, GradDrop): each against an independent numpy version of its paper's
algorithm on random and hand-made conflicting gradients, then training with fit."""

import itertools
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mtl
from keras_mtl.weighting.aligned_mtl import AlignedMTL
from keras_mtl.weighting.cagrad import CAGrad
from keras_mtl.weighting.graddrop import GradDrop
from keras_mtl.weighting.gradvac import GradVac
from keras_mtl.weighting.imtl import IMTL
from keras_mtl.weighting.mgda import MGDA
from keras_mtl.weighting.nash_mtl import NashMTL
from keras_mtl.weighting.pcgrad import PCGrad
from weighting_utils import fit_tiny

METHODS = {"mgda": MGDA, "pcgrad": PCGrad, "cagrad": CAGrad, "imtl": IMTL, "nash_mtl": NashMTL,
           "aligned_mtl": AlignedMTL, "gradvac": GradVac, "graddrop": GradDrop}


def _combine(method, grads, losses=None):
    """Builds `method` for the K rows of `grads` and returns numpy `(combined, weights)`."""
    grads = np.asarray(grads, "float32")
    if not method.built:
        method.build((grads.shape[0],))
    if losses is None:
        losses = np.ones(grads.shape[0], "float32")
    combined, weights = method.combine_gradients(grads, np.asarray(losses, "float32"))
    return np.asarray(combined, "float64"), np.asarray(weights, "float64")


def _conflicting(k, p, seed, shared=0.3):
    """K random gradients with a common component, of different norms (some conflict)."""
    rng = np.random.default_rng(seed)
    grads = rng.normal(size=(k, p)) + shared * rng.normal(size=p)
    return grads * rng.uniform(0.2, 3.0, size=(k, 1))


def _project_simplex(v):
    u = np.sort(v)[::-1]
    cumulative = np.cumsum(u) - 1
    rho = np.nonzero(u > cumulative / np.arange(1, len(v) + 1))[0][-1]
    return np.maximum(v - cumulative[rho] / (rho + 1), 0)


def _numpy_min_norm_point(grads, iterations=20000):
    """The min-norm point of the convex hull of the rows, by accelerated projected
    gradient (FISTA) on the simplex weights."""
    gram = grads @ grads.T
    step = 1.0 / np.linalg.eigvalsh(gram).max()
    w = y = np.ones(len(grads)) / len(grads)
    t = 1.0
    for _ in range(iterations):
        w_next = _project_simplex(y - step * gram @ y)
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        y = w_next + (t - 1) / t_next * (w_next - w)
        w, t = w_next, t_next
    return w @ grads


# ----------------------------------------------------------------------------- MGDA


@pytest.mark.parametrize("case", ["interior", "vertex"])
def test_mgda_two_tasks_is_the_closed_form(case):
    rng = np.random.default_rng(1)
    g1 = rng.normal(size=12)
    g2 = -0.5 * g1 + rng.normal(size=12) if case == "interior" else 3 * g1 + 0.1 * rng.normal(size=12)
    # Sener and Koltun, Algorithm 1: gamma = clip((g2 - g1).g2 / ||g1 - g2||^2, 0, 1).
    gamma = np.clip((g2 - g1) @ g2 / np.sum((g1 - g2) ** 2), 0, 1)
    expected = gamma * g1 + (1 - gamma) * g2
    combined, weights = _combine(MGDA(), np.stack([g1, g2]))
    np.testing.assert_allclose(combined / 2, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights / 2, [gamma, 1 - gamma], atol=1e-5)
    if case == "vertex":
        assert gamma == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mgda_five_tasks_matches_projected_gradient_solver(seed):
    grads = _conflicting(5, 40, seed)
    expected = _numpy_min_norm_point(grads)
    combined, weights = _combine(MGDA(), grads)
    scale = np.linalg.norm(grads, axis=1).max()
    np.testing.assert_allclose(combined / 5, expected, atol=1e-4 * scale)
    assert np.all(weights >= 0) and abs(weights.sum() - 5) < 1e-5


def test_mgda_normalization_shapes_weights_applied_to_raw_gradients():
    grads = _conflicting(3, 20, 4)
    losses = np.array([0.5, 2.0, 1.5])
    norms = np.linalg.norm(grads, axis=1)
    normalized = grads / (losses * norms)[:, None]
    point = _numpy_min_norm_point(normalized)
    weights_expected = np.linalg.lstsq(normalized.T, point, rcond=None)[0]
    combined, weights = _combine(MGDA(normalization="loss+"), grads, losses)
    np.testing.assert_allclose(weights / 3, weights_expected, atol=1e-4)
    np.testing.assert_allclose(combined, weights @ grads, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- PCGrad


def _numpy_pcgrad_row(grads, i, order):
    p = grads[i].copy()
    for j in order:
        product = p @ grads[j]
        if product < 0:
            p -= product / (grads[j] @ grads[j]) * grads[j]
    return p


def test_pcgrad_projects_conflicting_pair_by_hand():
    g1, g2 = np.array([1.0, 0.0]), np.array([-1.0, 1.0])
    # g1 . g2 = -1: g1 - (-1/2) g2 = (0.5, 0.5); g2 - (-1/1) g1 = (0, 1).
    combined, weights = _combine(PCGrad(seed=0), np.stack([g1, g2]))
    np.testing.assert_allclose(combined, [0.5, 1.5], atol=1e-6)
    np.testing.assert_allclose(weights, [2.0, 1.5], atol=1e-6)


def test_pcgrad_leaves_agreeing_gradients_alone():
    grads = np.abs(_conflicting(3, 10, 0))
    combined, weights = _combine(PCGrad(seed=0), grads)
    np.testing.assert_allclose(combined, grads.sum(0), rtol=1e-5)
    np.testing.assert_allclose(weights, 1.0)


def test_pcgrad_three_tasks_is_one_of_the_random_orders():
    grads = _conflicting(3, 15, 3, shared=0.0)
    per_row = [{order: _numpy_pcgrad_row(grads, i, order) for order in itertools.permutations(range(3))}
               for i in range(3)]
    candidates = [sum(per_row[i][o] for i, o in enumerate(orders))
                  for orders in itertools.product(*(list(r) for r in per_row))]
    method = PCGrad(seed=5)
    seen = set()
    for _ in range(12):
        combined, _ = _combine(method, grads)
        errors = [np.abs(combined - c).max() for c in candidates]
        assert min(errors) < 1e-5 * np.abs(grads).max()
        seen.add(int(np.argmin(errors)))
    assert len(seen) > 1, "the task order never changed"


def test_pcgrad_seed_gives_the_same_orders():
    grads = _conflicting(4, 15, 2, shared=0.0)
    first = [_combine(PCGrad(seed=7), grads)[0] for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])


# --------------------------------------------------------------------------- CAGrad


def test_cagrad_with_c_zero_is_the_mean_gradient_times_k():
    grads = _conflicting(4, 30, 0)
    combined, weights = _combine(CAGrad(c=0.0), grads)
    np.testing.assert_allclose(combined / 4, grads.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights, 1.0, atol=1e-6)


def _cagrad_objective(w, grads, c):
    """F(w) = g_w . g0 + c ||g0|| ||g_w|| for each row of w."""
    g0 = grads.mean(0)
    g_w = w @ grads
    return g_w @ g0 + c * np.linalg.norm(g0) * np.linalg.norm(g_w, axis=-1)


@pytest.mark.parametrize("c", [0.2, 0.5, 0.9])
def test_cagrad_direction_is_optimal_by_duality(c):
    grads = _conflicting(3, 25, 6, shared=0.1)
    combined, _ = _combine(CAGrad(c=c, rescale=0), grads)
    direction = combined / 3
    g0 = grads.mean(0)
    radius = c * np.linalg.norm(g0)
    # Brute force on a fine simplex grid, refined once around its best point.
    n = 400
    a, b = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = a + b <= n
    grid = np.stack([a[keep], b[keep], n - a[keep] - b[keep]], axis=1) / n
    best = grid[np.argmin(_cagrad_objective(grid, grads, c))]
    fine = best[:2] + np.stack(np.meshgrid(*[np.linspace(-2 / n, 2 / n, 201)] * 2), -1).reshape(-1, 2)
    fine = np.concatenate([fine, 1 - fine.sum(1, keepdims=True)], axis=1)
    fine = fine[np.all(fine >= 0, axis=1)]
    upper = _cagrad_objective(fine, grads, c).min()
    # Any d in the ball has min_k g_k . d <= F* <= upper; equality certifies d.
    assert np.linalg.norm(direction - g0) <= radius * (1 + 1e-4)
    worst = (grads @ direction).min()
    assert worst <= upper + 1e-5 * np.abs(upper)
    np.testing.assert_allclose(worst, upper, rtol=1e-4)


def test_cagrad_rescale_divides_by_one_plus_c_squared():
    grads = _conflicting(3, 20, 8)
    plain, _ = _combine(CAGrad(c=0.5, rescale=0), grads)
    scaled, _ = _combine(CAGrad(c=0.5, rescale=1), grads)
    np.testing.assert_allclose(scaled * 1.25, plain, rtol=1e-5)


# ---------------------------------------------------------------------------- IMTL-G


@pytest.mark.parametrize("k", [2, 3, 5])
def test_imtl_g_matches_the_papers_closed_form(k):
    grads = _conflicting(k, 30, k)
    units = grads / np.linalg.norm(grads, axis=1, keepdims=True)
    d = grads[0] - grads[1:]
    u = units[0] - units[1:]
    rest = grads[0] @ u.T @ np.linalg.inv(d @ u.T)
    alpha = np.concatenate([[1 - rest.sum()], rest])
    combined, weights = _combine(IMTL(), grads)
    np.testing.assert_allclose(weights / k, alpha, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(combined / k, alpha @ grads, rtol=1e-3, atol=1e-4)
    projections = units @ combined
    np.testing.assert_allclose(projections, projections[0], rtol=1e-3)


def test_imtl_g_with_duplicate_gradients_is_finite():
    grads = _conflicting(3, 10, 1)
    grads[2] = grads[1]
    combined, weights = _combine(IMTL(), grads)
    assert np.all(np.isfinite(combined)) and abs(weights.sum() - 3) < 1e-4
    projections = (grads / np.linalg.norm(grads, axis=1, keepdims=True)) @ combined
    np.testing.assert_allclose(projections, projections[0], rtol=1e-3)


# -------------------------------------------------------------------------- Nash-MTL


@pytest.mark.parametrize("normalize_gramian", [False, True])
@pytest.mark.parametrize("k", [2, 3, 5])
def test_nash_mtl_weights_solve_the_bargaining_condition(k, normalize_gramian):
    grads = _conflicting(k, 40, 10 + k)
    combined, weights = _combine(NashMTL(max_norm=0.0, normalize_gramian=normalize_gramian), grads)
    gram = grads @ grads.T
    if normalize_gramian:
        gram = gram / np.linalg.norm(gram)
    assert np.all(weights > 0)
    np.testing.assert_allclose(gram @ weights, 1 / weights, rtol=1e-3)
    np.testing.assert_allclose(combined, weights @ grads, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("normalize_gramian", [False, True])
def test_nash_mtl_orthogonal_gradients_and_clipping(normalize_gramian):
    grads = np.diag([1.0, 2.0, 4.0])
    gram = grads @ grads.T
    if normalize_gramian:
        gram = gram / np.linalg.norm(gram)
    expected = 1 / np.sqrt(np.diag(gram))
    _, weights = _combine(NashMTL(max_norm=0.0, normalize_gramian=normalize_gramian), grads)
    np.testing.assert_allclose(weights, expected, rtol=1e-4)
    combined, _ = _combine(NashMTL(max_norm=0.5), grads)
    np.testing.assert_allclose(np.linalg.norm(combined), 0.5, rtol=1e-5)


def test_nash_mtl_updates_weights_every_n_steps():
    method = NashMTL(update_weights_every=3, max_norm=0.0)
    weights = [_combine(method, _conflicting(3, 20, seed))[1] for seed in range(4)]
    np.testing.assert_array_equal(weights[1], weights[0])
    np.testing.assert_array_equal(weights[2], weights[0])
    assert not np.allclose(weights[3], weights[0])


# ----------------------------------------------------------------------- Aligned-MTL


@pytest.mark.parametrize("rank_deficient", [False, True])
def test_aligned_mtl_matches_svd_alignment(rank_deficient):
    grads = _conflicting(4, 30, 2)
    if rank_deficient:
        grads[3] = grads[0] - 2 * grads[1]
    # Paper: G = U S V^T; the aligned gradients sigma_min U V^T (over G's rank).
    u, s, vt = np.linalg.svd(grads, full_matrices=False)
    rank = int(np.sum(s > s[0] * 1e-5))
    aligned = s[rank - 1] * u[:, :rank] @ vt[:rank]
    combined, weights = _combine(AlignedMTL(), grads)
    np.testing.assert_allclose(combined, aligned.sum(0), rtol=1e-3, atol=1e-4 * s[0])
    np.testing.assert_allclose(combined, weights @ grads, rtol=1e-4, atol=1e-4)


def test_aligned_mtl_orthogonal_equal_norms_is_the_sum():
    grads = 2.0 * np.eye(3, 6)
    combined, weights = _combine(AlignedMTL(), grads)
    np.testing.assert_allclose(weights, 1.0, rtol=1e-5)
    np.testing.assert_allclose(combined, grads.sum(0), rtol=1e-5)


# --------------------------------------------------------------------------- GradVac


def _numpy_gradvac(grads, targets, beta, orders):
    """Wang et al., Algorithm 1 (one target per task pair, updated at every visit)."""
    targets = targets.copy()
    total = np.zeros(grads.shape[1])
    for i, order in enumerate(orders):
        p = grads[i].copy()
        for j in order:
            if j == i:
                continue
            cosine = p @ grads[j] / (np.linalg.norm(p) * np.linalg.norm(grads[j]))
            t = targets[i, j]
            if cosine < t:
                p += (np.linalg.norm(p) * (t * np.sqrt(1 - cosine ** 2) - cosine * np.sqrt(1 - t ** 2))
                      / (np.linalg.norm(grads[j]) * np.sqrt(1 - t ** 2))) * grads[j]
            targets[i, j] = (1 - beta) * t + beta * cosine
        total += p
    return total, targets


def test_gradvac_two_tasks_over_several_steps():
    rng = np.random.default_rng(0)
    method = GradVac(beta=0.5, seed=0)
    targets = np.zeros((2, 2))
    # Agreeing gradients first, so that later, less similar ones fall below a
    # positive target (the case where GradVac differs from PCGrad).
    for step, cosine in enumerate([0.8, 0.2, -0.3, 0.5]):
        u, v = np.linalg.qr(rng.normal(size=(12, 2)))[0].T
        grads = np.stack([2.0 * u, 0.5 * (cosine * u + np.sqrt(1 - cosine ** 2) * v)])
        expected, targets = _numpy_gradvac(grads, targets, 0.5, [[1], [0]])
        combined, _ = _combine(method, grads)
        np.testing.assert_allclose(combined, expected, rtol=1e-4, atol=1e-5, err_msg=f"step {step}")
        np.testing.assert_allclose(method.targets.numpy(), targets, atol=1e-5)
        if step == 1:
            assert not np.allclose(combined, grads.sum(0), atol=1e-3)


def test_gradvac_first_step_with_three_tasks_is_pcgrad_with_some_order():
    grads = _conflicting(3, 15, 3, shared=0.0)
    options = {}
    for orders in itertools.product(itertools.permutations(range(3)), repeat=3):
        options[orders] = _numpy_gradvac(grads, np.zeros((3, 3)), 0.1, orders)
    method = GradVac(beta=0.1, seed=2)
    combined, _ = _combine(method, grads)
    targets = method.targets.numpy()
    errors = [np.abs(combined - c).max() + np.abs(targets - t).max() for c, t in options.values()]
    assert min(errors) < 1e-4
    # With all targets at 0 the adjustment is PCGrad's projection.
    assert any(np.allclose(combined, sum(_numpy_pcgrad_row(grads, i, o) for i, o in enumerate(orders)),
                           atol=1e-4)
               for orders in itertools.product(itertools.permutations(range(3)), repeat=3))


# -------------------------------------------------------------------------- GradDrop


def test_graddrop_with_full_leak_or_agreeing_signs_is_the_sum():
    grads = _conflicting(3, 50, 0)
    combined, weights = _combine(GradDrop(leak=1.0, seed=0), grads)
    np.testing.assert_allclose(combined, grads.sum(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights, 1.0, rtol=1e-6)
    signs = np.sign(np.random.default_rng(0).normal(size=50))
    agreeing = np.abs(grads) * signs
    combined, weights = _combine(GradDrop(seed=0), agreeing)
    np.testing.assert_allclose(combined, agreeing.sum(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(weights, 1.0, rtol=1e-6)


def test_graddrop_keeps_one_sign_with_the_papers_probability():
    patterns = np.array([[1.0, -1.0, 0.5, 2.0], [-3.0, 1.0, 0.5, -1.0], [1.0, -0.2, -2.0, 0.5]])
    repeats = 20000
    grads = np.repeat(patterns, repeats, axis=1)
    leak = 0.25
    combined, weights = _combine(GradDrop(leak=leak, seed=3), grads)
    positive = np.where(grads > 0, grads, 0)
    negative = np.where(grads < 0, grads, 0)
    keep_positive = (positive + leak * negative).sum(0)
    keep_negative = (negative + leak * positive).sum(0)
    chose_positive = np.isclose(combined, keep_positive, atol=1e-5)
    assert np.all(chose_positive | np.isclose(combined, keep_negative, atol=1e-5))
    purity = 0.5 * (1 + patterns.sum(0) / np.abs(patterns).sum(0))
    np.testing.assert_allclose(chose_positive.reshape(4, repeats).mean(1), purity, atol=0.015)
    mask = np.where(chose_positive, (grads > 0) + leak * (grads <= 0), (grads < 0) + leak * (grads >= 0))
    np.testing.assert_allclose(weights, (np.abs(grads) * mask).sum(1) / np.abs(grads).sum(1), rtol=1e-4)


# ------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("make,message", [
    (lambda: MGDA(normalization="max"), "normalization='max'"),
    (lambda: CAGrad(c=-1), "c=-1"),
    (lambda: CAGrad(rescale=3), "rescale=3"),
    (lambda: NashMTL(update_weights_every=0), "update_weights_every=0"),
    (lambda: GradVac(beta=2), "beta=2"),
    (lambda: GradDrop(leak=-0.1), "leak=-0.1"),
    (lambda: PCGrad(gradient_mode="loss"), "gradient_mode='loss'"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make()


# -------------------------------------------------------------------------- training


def _tasks():
    return [
        keras_mtl.Task("cls", head=keras.layers.Dense(3, name="cls_logits"),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
        keras_mtl.Task("reg", head=keras.layers.Dense(2, name="reg_out"), loss="mse"),
        keras_mtl.Task("bin", head=keras.layers.Dense(1, name="bin_logit"),
                       loss=keras.losses.BinaryCrossentropy(from_logits=True)),
    ]


def _data(n=16):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = {"cls": (x[:, 0] > 0).astype("int32") + (x[:, 1] > 1).astype("int32"),
         "reg": np.stack([x[:, 2] * 3, -x[:, 2] * 3], axis=1).astype("float32"),
         "bin": (x[:, 2] < 0).astype("float32")[:, None]}
    return x, y


def _fit(weighting, jit_compile=False, epochs=1):
    model = keras_mtl.build("hard_sharing", _tasks(), backbone="mlp", input_shape=(8,))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting=weighting, jit_compile=jit_compile)
    before = [v.numpy() for v in model.shared_variables]
    x, y = _data()
    history = model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, shuffle=False).history
    return model, history, before


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_trains_with_fit(name):
    model, history, before = _fit(name, epochs=2)
    assert type(model.weighting) is METHODS[name]
    assert np.all(np.isfinite(history["loss"]))
    for task in ("cls", "reg", "bin"):
        assert np.all(np.isfinite(history[f"{task}_weight"])), (task, history[f"{task}_weight"])
    assert any(not np.allclose(b, v.numpy()) for b, v in zip(before, model.shared_variables))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_compiles_with_xla(name):
    method = METHODS[name]()
    method.build((3,))
    grads = tf.constant(_conflicting(3, 20, 0), "float32")
    combined, weights = tf.function(method.combine_gradients, jit_compile=True)(grads, tf.ones(3))
    assert combined.shape == (20,) and np.all(np.isfinite(weights.numpy()))


def test_fit_with_jit_compile():
    model, history, _ = _fit("nash_mtl", jit_compile=True, epochs=1)
    assert model.jit_compile and np.all(np.isfinite(history["loss"]))


@pytest.mark.parametrize("name", ["imtl", "graddrop"])
def test_representation_mode_trains(name):
    _, history, _ = _fit(METHODS[name](gradient_mode="representation"))
    assert np.all(np.isfinite(history["loss"]))


@pytest.mark.parametrize("make", [lambda: NashMTL(update_weights_every=2, max_iterations=10),
                                  lambda: GradVac(beta=0.3, seed=4)], ids=["nash_mtl", "gradvac"])
def test_state_survives_a_keras_round_trip(make, tmp_path):
    model, _, _ = _fit(make(), epochs=1)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.weighting.get_config() == model.weighting.get_config()
    assert len(loaded.weighting.variables) == len(model.weighting.variables) >= 2
    for v, w in zip(model.weighting.variables, loaded.weighting.variables):
        np.testing.assert_array_equal(w.numpy(), v.numpy(), err_msg=v.path)
    assert not np.all(model.weighting.variables[0].numpy() == 0)


def test_graddrop_in_representation_mode_with_unknown_batch_size(two_task_model, two_task_data):
    model = two_task_model(metrics=False)
    model.compile(optimizer="adam",
                  weighting=keras_mtl.weighting.GradDrop(gradient_mode="representation"))
    data = tf.data.Dataset.from_tensor_slices(two_task_data(30)).batch(8)  # last batch of 6
    assert np.isfinite(model.fit(data, epochs=1, verbose=0).history["loss"][0])


def test_gradient_methods_log_their_solver_residual():
    _, history = fit_tiny(MGDA(), epochs=2)
    residuals = history.history["weighting_residual"]
    assert len(residuals) == 2 and max(residuals) < MGDA.residual_bound
    _, history = fit_tiny("equal", epochs=1)
    assert "weighting_residual" not in history.history


def test_a_solver_stopped_short_warns_once():
    with pytest.warns(UserWarning, match="NashMTL's solver ended epoch 0 with a mean residual") as record:
        _, history = fit_tiny(NashMTL(max_iterations=1), epochs=2)
    assert history.history["weighting_residual"][0] > NashMTL.residual_bound
    assert sum("mean residual" in str(w.message) for w in record) == 1


@pytest.mark.parametrize("make", [lambda: NashMTL(), lambda: NashMTL(update_weights_every=3),
                                  lambda: GradVac(beta=0.5, seed=1), lambda: PCGrad(seed=1)],
                         ids=["nash_mtl", "nash_mtl_every_3", "gradvac", "pcgrad"])
def test_a_nonfinite_gramian_leaves_the_method_state_as_it_was(make):
    # A loss-scale overflow under mixed_float16 (which the LossScaleOptimizer skips)
    # hands the method an Inf Gramian: its weights are NaN, and its state (Nash-MTL's
    # weights and step count, GradVac's targets, the seed generator) stays as it was,
    # not moved by the solve on the stand-in identity.
    method = make()
    grads = _conflicting(3, 12, seed=0)
    _combine(method, grads)  # a finite step first, so that the state is not the initial one
    before = [v.numpy().copy() for v in method.variables]
    overflow = grads.copy()
    overflow[1, 4] = np.inf
    _, weights = _combine(method, overflow)
    assert np.isnan(weights).all()
    for variable, value in zip(method.variables, before):
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)
