"""Shared helpers for the weighting tests: a tiny three-task MLP model, its data,
and a `.keras` round trip of the weighting state."""

import functools
import os

import keras
import numpy as np
from keras import ops

import keras_mtl
from keras_mtl.backbones.mlp import mlp

TASKS = ("cls", "reg", "bin")


def batch_statistics_backbone(input_shape):
    """Dense, batch normalization (moving statistics) and dropout (a seed generator
    state): a backbone whose forward pass changes state."""
    inputs = keras.Input(input_shape)
    x = keras.layers.BatchNormalization()(keras.layers.Dense(16)(inputs))
    return keras.Model(inputs, keras.layers.Dropout(0.3)(keras.layers.ReLU()(x)))


def tiny_model(backbone=None):
    """An 8-dim input, 2 shared dense layers (or `backbone`), a 3-class, a regression
    and a binary task."""
    tasks = [
        keras_mtl.Task("cls", head=keras.layers.Dense(3, activation="softmax", name="cls_out"),
                       loss="sparse_categorical_crossentropy", metrics=["accuracy"]),
        keras_mtl.Task("reg", head=keras.layers.Dense(2, name="reg_out"), loss="mse"),
        keras_mtl.Task("bin", head=keras.layers.Dense(1, activation="sigmoid", name="bin_out"),
                       loss="binary_crossentropy"),
    ]
    return keras_mtl.build("hard_sharing", tasks, input_shape=(8,),
                           backbone=backbone or functools.partial(mlp, units=(16, 8)))


def tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = {
        "cls": (x[:, 0] > 0).astype("int32") + (x[:, 1] > 1).astype("int32"),
        "reg": np.stack([x[:, 2] * 3.0, x[:, 3] - x[:, 4]], axis=1).astype("float32"),
        "bin": (x[:, 5] > 0).astype("float32")[:, None],
    }
    return x, y


def fit_tiny(weighting, epochs=3, weighting_optimizer=None, **compile_kwargs):
    """Compiles the tiny model with `weighting`, fits it (batch 16) and returns
    `(model, history)`."""
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting=weighting,
                  weighting_optimizer=weighting_optimizer, **compile_kwargs)
    x, y = tiny_data()
    history = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, shuffle=False)
    return model, history


def assert_weights_logged(history, epochs):
    for task in TASKS:
        values = history.history[f"{task}_weight"]
        assert len(values) == epochs and np.all(np.isfinite(values)), (task, values)


def weighting_state(model):
    return [v.numpy() for v in model.weighting.variables]


def assert_round_trip(model, tmp_path):
    """Saves and reloads `model`; its weighting state, class and config must match
    exactly and the reloaded model must keep training."""
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.weighting) is type(model.weighting)
    assert loaded.weighting.get_config() == model.weighting.get_config()
    before, after = weighting_state(model), weighting_state(loaded)
    assert len(before) == len(after)
    for variable, value, restored in zip(model.weighting.variables, before, after):
        np.testing.assert_array_equal(restored, value, err_msg=variable.path)
    x, y = tiny_data(n=16, seed=1)
    logs = loaded.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][-1])
    return loaded


def assert_fits_and_round_trips(method, tmp_path, epochs=2):
    """Fits the tiny model with `method` (seeded), checks finite losses and weights,
    and its `.keras` round trip; returns the model."""
    keras.utils.set_random_seed(0)
    model, history = fit_tiny(method, epochs=epochs)
    assert_weights_logged(history, epochs)
    assert np.all(np.isfinite(history.history["loss"]))
    assert_round_trip(model, tmp_path)
    return model


def fit_and_step_logs(make, x, y):
    """`(fit logs, step logs)`: the first epoch's logs of a model from `make()` (seeded
    alike each time) fitted on `(x, y)` as two batches, and the logs of the second of
    two `train_on_batch` calls on those batches, under mixed_float16."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    half = len(x) // 2
    runs = []
    try:
        for call in ("fit", "train_on_batch"):
            keras.utils.set_random_seed(0)
            model = make()
            if call == "fit":
                history = model.fit(x, y, batch_size=half, shuffle=False, verbose=0).history
                runs.append({k: v[0] for k, v in history.items()})
            else:
                model.train_on_batch(x[:half], {k: v[:half] for k, v in y.items()})
                runs.append(model.train_on_batch(x[half:], {k: v[half:] for k, v in y.items()},
                                                 return_dict=True))
            assert int(model.optimizer.iterations.numpy()) == 1
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return runs


def solve_gradients(method, grads, present=None):
    """Runs the gradient method `method` (built for K tasks on first use) on the K x P
    float32 matrix `grads` through `combine_gradients`, and returns `(combined,
    weights, residual, factor)` as float64 numpy: `factor` is a K x K float64 factor of
    the float32 Gramian the method saw (`gradient_references.gram_factor`), on which a
    reference measures the method alone, not the Gramian's rounding. Works on every
    backend."""
    import gradient_references as ref
    from keras import ops

    k = grads.shape[0]
    if not method.built:
        method.build((k,))
    if id(method) not in _COMPILED:
        _COMPILED[id(method)] = (method, _compiled_solver(method, k))
    mask = np.ones(k, bool) if present is None else np.asarray(present, bool)
    combined, weights, residual, gram = _COMPILED[id(method)][1](
        ops.convert_to_tensor(np.asarray(grads, "float32")), ops.convert_to_tensor(mask))
    to_numpy = lambda t: np.asarray(ops.convert_to_numpy(t), "float64")  # noqa: E731
    return to_numpy(combined), to_numpy(weights), float(to_numpy(residual)), ref.gram_factor(to_numpy(gram))


_COMPILED = {}  # id(method) -> (method, its compiled solver); the method is kept alive.


def _compiled_solver(method, k):
    from keras import ops
    from keras_mtl.weighting.base import gramian

    def solve(matrix, mask):
        gram = gramian(matrix)
        combined, weights = method.combine_gradients(matrix, ops.ones((k,)), mask)
        residual = ops.zeros(())
        if method.uses_gramian:
            # A second solve for the residual, which leaves the state (moving averages,
            # random draws) as the step left it.
            state = [ops.copy(v.value) for v in method.variables]
            residual = method.gramian_weights(gram, ops.ones((k,)), mask)[1]
            for variable, value in zip(method.variables, state):
                variable.assign(value)
        return combined, weights, residual, gram

    return compiled(solve, method.variables)


def compiled(function, variables):
    """`function` compiled as a train step compiles it (and faster than eager loops,
    which on JAX compile a while loop's body at each call): in a `tf.function` on
    TensorFlow; in a `jax.jit` on JAX, with the `variables` it reads and assigns
    passed in and out (Keras' `StatelessScope`) and assigned after each call, as the
    eager function would have left them; as it is on PyTorch."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    if keras.backend.backend() == "jax":
        import jax

        def stateless(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
                outputs = function(*args)
            return outputs, [scope.get_current_value(v) for v in variables]

        jitted = jax.jit(stateless)

        def call(*args):
            outputs, values = jitted([v.value for v in variables], *args)
            for variable, value in zip(variables, values):
                variable.assign(value)
            return outputs

        return call
    return function


def float64_available():
    """Whether the backend computes in float64 when asked (JAX needs jax_enable_x64)."""
    from keras import ops
    return keras.backend.standardize_dtype(ops.cast(ops.ones(()), "float64").dtype) == "float64"


def reference_tolerance():
    """The relative agreement a Gramian method reaches with a float64 reference: 1e-4
    where its K x K work runs in float64, 1e-3 in float32 (JAX without x64)."""
    return 1e-4 if float64_available() else 1e-3


def assert_close_to_reference(name, weights, expected, factor, compare_weights=True):
    """The combined direction `weights @ factor` (and, when the weights are unique, the
    weights) within `reference_tolerance()` relative of the reference's. A direction
    near 0 (0 in the convex hull, rank-deficient gradients) is known only to the
    float32 Gramian's rounding, `sqrt(eps)` times the rows that cancel in it."""
    import gradient_references as ref

    tolerance = reference_tolerance()
    direction, expected_direction = weights @ factor, expected @ factor
    rows = np.linalg.norm(factor, axis=1) @ np.abs(expected)
    error = np.linalg.norm(direction - expected_direction)
    assert error <= tolerance * np.linalg.norm(expected_direction) + 1e-3 * rows, (name, error, weights, expected)
    if compare_weights:
        assert ref.relative_error(weights, expected) < tolerance, (name, weights, expected)


def assert_non_conflicting(name, direction, factor, rows=None):
    """`g_k . d >= 0` for every task, up to the rounding of the cosines (and, for a
    direction near 0, of `rows`, the scale of the rows that cancel in it)."""
    norms = np.linalg.norm(factor, axis=1)
    floor = 0.0 if rows is None else 1e-3 * rows
    products = factor @ direction
    assert np.all(products >= -10 * reference_tolerance() * norms * np.linalg.norm(direction)
                  - floor * norms), (name, products)


DEGENERATE = ("k6-in-r3", "rank2-k5", "duplicated", "parallel", "zero-in-hull")


def check_dual_cone_method(make, reference, cases, present_cases=False):
    """A dual-cone method (UPGrad, DualProj) from `make()` against its float64
    `reference` on `cases` ((name, grads) or, with `present_cases`, (name, grads,
    present)): the direction (and the weights where they are unique, i.e. outside
    `DEGENERATE`), no conflict with any task, `v >= b` (every present weight at least
    1), absent tasks at 0, and a small residual."""
    solvers = {}
    for case in cases:
        name, grads, present = case if present_cases else case + (np.ones(len(case[1]), bool),)
        method = solvers.setdefault(len(grads), make())
        _, weights, residual, factor = solve_gradients(method, grads, present)
        kept = np.flatnonzero(present)
        expected = np.zeros(len(grads))
        expected[kept] = reference(factor[kept])
        assert_close_to_reference(name, weights, expected, factor, compare_weights=name not in DEGENERATE)
        assert_non_conflicting(name, weights @ factor, factor, rows=np.linalg.norm(factor, axis=1) @ weights)
        assert np.all(weights[present] >= 1.0 - 1e-5), (name, weights)  # float32 weights
        assert np.all(weights[~present] == 0.0), (name, weights)
        assert np.isfinite(residual) and residual < reference_tolerance(), (name, residual)


def assert_absent_task_left_out(make):
    """A task without labels (a zero gradient row, not present) gets weight 0, and the
    others get the method's weights on the present tasks alone."""
    import gradient_references as ref

    grads = ref.scaled_family(4, 3, 100.0)
    weights = solve_gradients(make(), np.insert(grads, 2, 0.0, axis=0), [True, True, False, True, True])[1]
    alone = solve_gradients(make(), grads)[1]
    np.testing.assert_allclose(np.delete(weights, 2), alone, rtol=1e-5)
    assert weights[2] == 0.0


def objective_and_gradient(method, losses, present=None):
    """The objective, the logged weights and the objective's gradient in the losses
    of a loss-space method (on every backend)."""
    from keras import ops

    losses = ops.convert_to_tensor(np.asarray(losses, "float32"))
    present = None if present is None else ops.convert_to_tensor(present)
    if keras.backend.backend() == "jax":
        import jax

        objective, weights = method.combine(losses, present=present)
        gradient = jax.grad(lambda values: method.combine(values, present=present)[0])(losses)
    elif keras.backend.backend() == "torch":
        import torch

        losses = losses.detach().requires_grad_(True)
        objective, weights = method.combine(losses, present=present)
        gradient = torch.autograd.grad(objective, losses, allow_unused=True)[0]
        gradient = torch.zeros_like(losses) if gradient is None else gradient
        objective, weights = objective.detach(), weights.detach()
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(losses)
            objective, weights = method.combine(losses, present=present)
        gradient = tape.gradient(objective, losses)
    return float(objective), ops.convert_to_numpy(weights), ops.convert_to_numpy(gradient)


def run_steps(method, steps):
    """`(combined, weights)` in float64 for each `(grads, losses, present)` of `steps`,
    from one stateful gradient method, built on the first step with P its columns, its
    step compiled as in training (`compiled`)."""
    results = []
    for grads, losses, present in steps:
        if not method.built:
            method.num_shared_parameters = grads.shape[1]
            method.build((len(grads),))
        if id(method) not in _COMPILED_STEPS:
            _COMPILED_STEPS[id(method)] = (method, compiled(method.combine_gradients, method.variables))
        combined, weights = _COMPILED_STEPS[id(method)][1](
            ops.convert_to_tensor(grads), ops.convert_to_tensor(losses), ops.convert_to_tensor(present))
        results.append((np.asarray(ops.convert_to_numpy(combined), "float64"),
                        np.asarray(ops.convert_to_numpy(weights), "float64")))
    return results


_COMPILED_STEPS = {}  # id(method) -> (method, its compiled step); the method is kept alive.


def assert_nonfinite_step_keeps_state(method, grads):
    """After a finite step, a step with a NaN gradient returns NaN and leaves every
    variable of `method` as it was."""
    k = len(grads)
    run_steps(method, [(grads, np.ones(k, "float32"), np.ones(k, bool))])
    before = [ops.convert_to_numpy(v).copy() for v in method.variables]
    bad = grads.copy()
    bad[1, 4] = np.nan
    (combined, weights), = run_steps(method, [(bad, np.ones(k, "float32"), np.ones(k, bool))])
    assert np.all(np.isnan(combined)) and np.all(np.isnan(weights))
    for value, variable in zip(before, method.variables):
        np.testing.assert_array_equal(ops.convert_to_numpy(variable), value)
