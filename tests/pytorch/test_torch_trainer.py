"""`MultiTaskModel` on the PyTorch backend: every weighting method trains, per-task
gradients and their combination against a float64 numpy computation, masks and absent
tasks, separate optimizers, the task activity, the non-finite policy, mixed precision,
`.keras` round trips, `evaluate`, a `torch.nn.Module` trunk and the README. Numerical
agreement with the TensorFlow trainer is `tests/test_cross_backend.py`."""

import os
import sys

import keras
import numpy as np
import pytest
import torch

import keras_mtl

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import gradient_references as ref  # noqa: E402
from cross_backend_run import weighting as _method  # noqa: E402
from trainer_cases import (  # noqa: E402,F401
    mixed_precision_updates, nan_batch_data, state_of,
    test_a_loss_scale_overflow_counts_for_nothing_in_the_weight_logs,
    test_a_nonfinite_step_keeps_what_the_forward_pass_changed,
    test_evaluate_and_validation_log_every_task,
    test_freeze_absent_tasks_leaves_an_unlabelled_task_and_its_optimizer_untouched,
    test_ignore_trains_as_raise_on_finite_steps_and_applies_a_nonfinite_one,
    test_inactive_task_keeps_its_head, test_keras_file_round_trip,
    test_masked_task_losses_are_means_over_labelled_entries,
    test_nonfinite_gradient_with_finite_losses_is_skipped,
    test_nonfinite_gradient_with_finite_losses_raises_and_changes_nothing,
    test_random_methods_repeat_with_the_seed, test_separate_optimizers_update_their_own_variables,
    test_taskwise_early_stopping_stops_a_task)
from weighting_utils import TASKS, tiny_data, tiny_model  # noqa: E402

REGISTRY = keras_mtl.weighting.registry._REGISTRY
GRADIENT_METHODS = sorted(n for n, c in REGISTRY.items()
                          if issubclass(c, keras_mtl.weighting.base.GradientWeighting))
LOSS_METHODS = sorted(set(REGISTRY) - set(GRADIENT_METHODS))


def test_backend_is_torch():
    assert keras.backend.backend() == "torch"
    assert isinstance(tiny_model().shared_variables[0].value, torch.nn.Parameter)


@pytest.mark.parametrize("name,mode", [(m, "-") for m in LOSS_METHODS]
                         + [(m, g) for m in GRADIENT_METHODS for g in REGISTRY[m].GRADIENT_MODES])
def test_every_method_trains(name, mode):
    keras.utils.set_random_seed(0)
    model = tiny_model()
    before = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting=_method(name, mode))
    x, y = tiny_data(32)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False).history
    for task in TASKS:
        for key in (f"{task}_loss", f"{task}_weight"):
            assert np.all(np.isfinite(history[key])), (key, history)
    moved = [not np.allclose(b, a) for b, a in zip(before, model.get_weights())]
    assert all(moved), moved
    assert ("weighting_residual" in history) == (mode != "-")


def _linear_problem():
    """A linear trunk `H = X W` shared by three linear heads `H h_k` under MSE, one
    batch: task "a" fully labelled, "b" on half the rows, "c" absent."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(16, 8)).astype("float32")
    y = {t: rng.normal(size=(16, 1)).astype("float32") for t in "abc"}
    masks = {"a": np.ones(16, "float32"), "b": (np.arange(16) % 2).astype("float32"),
             "c": np.zeros(16, "float32")}
    inputs = keras.Input((8,))
    h = keras.layers.Dense(4, use_bias=False, name="trunk")(inputs)
    outputs = {t: keras.layers.Dense(1, use_bias=False, name=t)(h) for t in "abc"}
    model = keras_mtl.MultiTaskModel(inputs=inputs, outputs=outputs,
                                     tasks=[keras_mtl.Task(t, loss="mse") for t in "abc"])
    return model, x, y, masks


def _linear_gradients(x, y, masks, trunk, heads):
    """Per task, in float64: the gradient of the loss with respect to the shared
    representation H, the trunk kernel W and the task's head (absent task: zeros)."""
    x, h = np.float64(x), x.astype("float64") @ trunk
    by_rep, by_trunk, by_head = [], [], []
    for t in "abc":
        m = masks[t][:, None]
        count = m.sum()
        residual = (h @ heads[t] - y[t]) * m
        d_rep = 2 * residual @ heads[t].T / count if count else np.zeros_like(h)
        by_rep.append(d_rep)
        by_trunk.append(x.T @ d_rep)
        by_head.append(2 * h.T @ residual / count if count else np.zeros_like(heads[t]))
    return by_rep, by_trunk, by_head


@pytest.mark.parametrize("mode", ["shared_parameters", "representation"])
def test_a_gradient_method_step_against_numpy(mode):
    # IMTL-G on the per-task gradients of the trunk kernel (or of the representation),
    # with an absent task: its gradient is zero and its weight 0; the trunk moves by
    # the combined gradient, each head by its own task's gradient.
    model, x, y, masks = _linear_problem()
    lr = 0.1
    model.compile(optimizer=keras.optimizers.SGD(lr), weighting=keras_mtl.weighting.IMTL(
        gradient_mode=mode))
    trunk = model.get_layer("trunk").kernel.numpy().astype("float64")
    heads = {t: model.get_layer(t).kernel.numpy().astype("float64") for t in "abc"}
    history = model.fit(x, y, sample_weight=masks, batch_size=16, epochs=1, verbose=0).history
    weights = np.array([history[f"{t}_weight"][0] for t in "abc"])
    by_rep, by_trunk, by_head = _linear_gradients(x, y, masks, trunk, heads)
    rows = by_trunk if mode == "shared_parameters" else by_rep
    expected = ref.imtl(np.stack([r.ravel() for r in rows[:2]]))
    assert weights[2] == 0.0
    np.testing.assert_allclose(weights[:2] / weights[:2].sum(), expected / expected.sum(),
                               rtol=1e-4)
    combined = sum(w * g for w, g in zip(weights, by_trunk))
    np.testing.assert_allclose(model.get_layer("trunk").kernel.numpy(), trunk - lr * combined,
                               rtol=1e-5, atol=1e-6)
    for t, g in zip("abc", by_head):
        np.testing.assert_allclose(model.get_layer(t).kernel.numpy(), heads[t] - lr * g,
                                   rtol=1e-5, atol=1e-6, err_msg=t)


def test_a_loss_weighting_step_against_numpy():
    model, x, y, masks = _linear_problem()
    lr = 0.1
    model.compile(optimizer=keras.optimizers.SGD(lr), weighting=keras_mtl.weighting.Fixed(
        [1.0, 0.5, 2.0]))
    trunk = model.get_layer("trunk").kernel.numpy().astype("float64")
    heads = {t: model.get_layer(t).kernel.numpy().astype("float64") for t in "abc"}
    model.fit(x, y, sample_weight=masks, batch_size=16, epochs=1, verbose=0)
    _, by_trunk, by_head = _linear_gradients(x, y, masks, trunk, heads)
    combined = by_trunk[0] + 0.5 * by_trunk[1] + 2.0 * by_trunk[2]
    np.testing.assert_allclose(model.get_layer("trunk").kernel.numpy(), trunk - lr * combined,
                               rtol=1e-5, atol=1e-6)
    for t, w, g in zip("abc", (1.0, 0.5, 2.0), by_head):
        np.testing.assert_allclose(model.get_layer(t).kernel.numpy(), heads[t] - lr * w * g,
                                   rtol=1e-5, atol=1e-6, err_msg=t)


@pytest.mark.parametrize("call", ["fit", "train_on_batch"])
@pytest.mark.parametrize("weighting", ["equal", "mgda"])
def test_nonfinite_loss_raises_naming_the_task_and_leaves_the_failed_step_unapplied(
        call, weighting):
    x, y = nan_batch_data()  # a NaN label in the batch x[16:32]
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting=weighting)
    model.fit(x[:16], {k: v[:16] for k, v in y.items()}, batch_size=16, verbose=0)
    after_first = state_of(model)
    with pytest.raises(FloatingPointError, match=r"non-finite loss in task\(s\) \['reg'\] at "
                                                 r"training step 1"):
        if call == "train_on_batch":
            model.train_on_batch(x[16:32], {k: v[16:32] for k, v in y.items()})
        else:
            model.fit(x[16:], {k: v[16:] for k, v in y.items()}, batch_size=16, verbose=0,
                      shuffle=False)
    for before, now in zip(after_first, state_of(model)):
        np.testing.assert_array_equal(before, now)
    model.fit(x[:16], {k: v[:16] for k, v in y.items()}, batch_size=16, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 2


@pytest.mark.parametrize("weighting", ["dwa", "cagrad"])
def test_nonfinite_step_is_skipped_as_if_its_batch_were_not_there(weighting):
    x, y = nan_batch_data()
    keep = np.r_[0:16, 32:48]
    runs = []
    for data in ((x, y), (x[keep], {k: v[keep] for k, v in y.items()})):
        keras.utils.set_random_seed(0)
        model = tiny_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting=weighting,
                      on_nonfinite="skip")
        history = model.fit(*data, batch_size=16, epochs=2, verbose=0, shuffle=False).history
        runs.append((state_of(model), history))
    (state, history), (reference, reference_history) = runs
    assert np.all(np.isfinite(history["loss"]))
    for key in ("loss", "cls_loss", "reg_weight"):
        np.testing.assert_allclose(history[key], reference_history[key], rtol=1e-6)
    # Bit-identical: the skipped step ran no update.
    for a, b in zip(state, reference):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name,mode", [("equal", "-"), ("uncertainty", "-"), ("gradnorm", "-"),
                                       ("nash_mtl", "shared_parameters"),
                                       ("nash_mtl", "representation")])
def test_mixed_float16_steps_are_float32_steps(name, mode):
    # Every loss is scaled by 2**15 before differentiation: a method that saw the
    # scale (Nash-MTL's weights depend on the gradients' norms), or a gradient left
    # scaled, would move the variables far from float32's steps. (Seed 1: from seed
    # 0's weights, Nash-MTL in representation mode moves the first trunk kernel 10%
    # off its float32 step under float16, with task weights within 1e-4 of float32's;
    # from seeds 1-3 every variable is within 0.4%.)
    reference, _ = mixed_precision_updates("float32", _method(name, mode), seed=1)
    updates, model = mixed_precision_updates("mixed_float16", _method(name, mode), seed=1)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert int(model.optimizer.iterations.numpy()) == 3
    assert float(model.optimizer.dynamic_scale.numpy()) == 2.0 ** 15
    assert model.trainable_variables[0].dtype == "float32"
    for a, b in zip(reference, updates):
        scale = np.abs(a).max()
        assert scale > 0
        np.testing.assert_allclose(b, a, atol=0.03 * scale)


def _module_model():
    """A `torch.nn.Module` trunk in `keras.layers.TorchModuleWrapper`, two heads."""
    module = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
    inputs = keras.Input((8,))
    h = keras.layers.TorchModuleWrapper(module, name="trunk", output_shape=(None, 8))(inputs)
    outputs = {"reg": keras.layers.Dense(2, name="reg")(h),
               "bin": keras.layers.Dense(1, activation="sigmoid", name="bin")(h)}
    model = keras_mtl.MultiTaskModel(inputs=inputs, outputs=outputs, tasks=[
        keras_mtl.Task("reg", loss="mse"), keras_mtl.Task("bin", loss="binary_crossentropy")])
    return model, module


@pytest.mark.parametrize("name,mode", [("uncertainty", "-"), ("mgda", "shared_parameters"),
                                       ("cagrad", "representation")])
def test_a_torch_module_trunk_is_the_shared_backbone(name, mode):
    model, module = _module_model()
    parameters = {id(p) for p in module.parameters()}
    assert {id(v.value) for v in model.shared_variables} == parameters
    before = [p.detach().clone() for p in module.parameters()]
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting=_method(name, mode))
    x, y = tiny_data(32)
    history = model.fit(x, {"reg": y["reg"], "bin": y["bin"]}, batch_size=16, epochs=2,
                        verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < history["loss"][0]
    assert all(not torch.equal(b, p) for b, p in zip(before, module.parameters()))
