"""Trainer checks that the JAX and PyTorch tiers share (tests/jax/test_jax_trainer.py,
tests/pytorch/test_torch_trainer.py import the `test_*` functions and the helpers), on
the tiny model of `weighting_utils`."""

import functools

import keras
import numpy as np
import pytest

import keras_mtl
from keras_mtl.backbones.mlp import mlp
from weighting_utils import TASKS, batch_statistics_backbone, fit_and_step_logs, tiny_data, tiny_model


def state_of(model):
    """Every variable a train step may change, as numpy arrays."""
    variables = model.weights + model.optimizer.variables + model.weighting.variables
    return [v.numpy().copy() for v in variables]


def fit_adam(weighting, epochs=2, sample_weight=None, **compile_kwargs):
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting=weighting, **compile_kwargs)
    x, y = tiny_data()
    history = model.fit(x, y, sample_weight=sample_weight, batch_size=16, epochs=epochs,
                        verbose=0, shuffle=False)
    return model, history.history


def nan_batch_data():
    x, y = tiny_data(48)
    y["reg"][20] = np.nan  # in the second batch of 16
    return x, y


def logits_model():
    """The tiny model with heads that output logits: under mixed_float16, Keras'
    cross-entropy of a float16 softmax output overflows a loss-scaled step (the
    optimizer then skips it), which would hide what these tests compare."""
    tasks = [keras_mtl.Task("cls", head=keras.layers.Dense(3, name="cls_out"),
                            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
             keras_mtl.Task("reg", head=keras.layers.Dense(2, name="reg_out"), loss="mse"),
             keras_mtl.Task("bin", head=keras.layers.Dense(1, name="bin_out"),
                            loss=keras.losses.BinaryCrossentropy(from_logits=True))]
    return keras_mtl.build("hard_sharing", tasks, input_shape=(8,),
                           backbone=functools.partial(mlp, units=(16, 8)))


def mixed_precision_updates(policy, weighting, steps=3, seed=0):
    """Each variable's change over `steps` SGD steps under `policy` from the initial
    weights of `seed`, and the model."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(seed)
        model = logits_model()
        model.compile(optimizer=keras.optimizers.SGD(0.05), weighting=weighting)
        before = [w.copy() for w in model.get_weights()]
        x, y = tiny_data(16 * steps)
        # Inputs and targets small enough that no loss-scaled float16 gradient
        # overflows (else the optimizer skips that step).
        y["reg"] = y["reg"] / 4
        model.fit(x / 4, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
        return [a - b for a, b in zip(model.get_weights(), before)], model
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_masked_task_losses_are_means_over_labelled_entries():
    x, y = tiny_data()
    mask = np.zeros(len(x), "float32")
    mask[::3] = 1.0
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(0.0), weighting="equal")
    ones = np.ones(len(x), "float32")
    logs = model.evaluate(x, y, sample_weight={"reg": mask, "cls": ones, "bin": ones},
                          batch_size=len(x), verbose=0, return_dict=True)
    pred = model.predict(x, verbose=0)["reg"]
    expected = np.mean(np.mean((pred - y["reg"]) ** 2, axis=1)[mask > 0])
    np.testing.assert_allclose(logs["reg_loss"], expected, rtol=1e-5)


def test_ignore_trains_as_raise_on_finite_steps_and_applies_a_nonfinite_one():
    x, y = nan_batch_data()
    states = []
    for policy in ("raise", "ignore"):
        keras.utils.set_random_seed(0)
        model = tiny_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-2), on_nonfinite=policy)
        model.fit(x[:16], {k: v[:16] for k, v in y.items()}, batch_size=16, epochs=2, verbose=0)
        states.append(state_of(model))
    for a, b in zip(*states):
        np.testing.assert_array_equal(a, b)
    logs = model.train_on_batch(x[16:32], {k: v[16:32] for k, v in y.items()}, return_dict=True)
    assert np.isnan(logs["reg_loss"]) and int(model.optimizer.iterations.numpy()) == 3
    assert np.isnan(model.shared_variables[0].numpy()).any()


def test_nonfinite_gradient_with_finite_losses_raises_and_changes_nothing(zero_error_model,
                                                                         zero_error_data):
    x, y = zero_error_data(zero_batch=2)
    model = zero_error_model()
    model.fit(x[:16], {k: v[:16] for k, v in y.items()}, batch_size=8, shuffle=False, verbose=0)
    before = state_of(model)
    with pytest.raises(FloatingPointError, match=r"non-finite gradient with finite losses of "
                                                 r"task\(s\) \['a', 'b'\] at training step 2"):
        model.fit(x[16:], {k: v[16:] for k, v in y.items()}, batch_size=8, shuffle=False,
                  verbose=0)
    for a, b in zip(before, state_of(model)):
        np.testing.assert_array_equal(a, b)


def test_evaluate_and_validation_log_every_task():
    x, y = tiny_data()
    model, history = fit_adam("equal", epochs=1)
    logs = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    for task in TASKS:
        assert np.isfinite(logs[f"{task}_loss"]) and logs[f"{task}_weight"] == 1.0
    model.fit(x, y, validation_data=(x, y), batch_size=16, epochs=1, verbose=0)
    assert "val_cls_accuracy" in model.history.history


@pytest.mark.parametrize("on_nonfinite", ["raise", "skip"])
def test_a_loss_scale_overflow_counts_for_nothing_in_the_weight_logs(on_nonfinite):
    # The first batch's loss-scaled float16 gradients overflow: the LossScaleOptimizer
    # skips that step and lowers the scale, and MGDA's weights for it are NaN. The
    # epoch's weight and residual means are those of the applied step alone.
    def make():
        model = logits_model()
        model.compile(optimizer=keras.optimizers.SGD(0.05), weighting="mgda",
                      on_nonfinite=on_nonfinite)
        return model

    x, y = tiny_data(32)
    y["reg"][:16] *= 1e4
    logs, reference = fit_and_step_logs(make, x, y)
    for key in [f"{t}_weight" for t in TASKS] + ["weighting_residual"]:
        assert np.isfinite(reference[key]), reference
        np.testing.assert_allclose(logs[key], reference[key], rtol=1e-6, err_msg=key)


@pytest.mark.parametrize("name", ["rlw", "pcgrad", "graddrop", "gradvac"])
def test_random_methods_repeat_with_the_seed(name):
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        model, history = fit_adam(name, epochs=1)
        runs.append((history["cls_weight"], model.get_weights()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("weighting", ["equal", "mgda"])
def test_freeze_absent_tasks_leaves_an_unlabelled_task_and_its_optimizer_untouched(weighting):
    x, y = tiny_data(32)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting=weighting,
                  freeze_absent_tasks=True)
    # Two steps with labels for every task, so every optimizer has moments.
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    head = [v.numpy().copy() for v in model.task_variables["bin"]]
    head_optimizer = [v.numpy().copy() for v in model.task_optimizers["bin"].variables]
    trunk = [v.numpy().copy() for v in model.shared_variables]
    ones = np.ones(len(x), "float32")
    no_bin = {"cls": ones, "reg": ones, "bin": np.zeros(len(x), "float32")}
    history = model.fit(x, y, sample_weight=no_bin, batch_size=16, epochs=1, verbose=0,
                        shuffle=False).history
    for before, v in zip(head + head_optimizer,
                         model.task_variables["bin"] + model.task_optimizers["bin"].variables):
        np.testing.assert_array_equal(before, v.numpy(), err_msg=v.path)
    assert not any(np.allclose(b, v.numpy()) for b, v in zip(trunk, model.shared_variables))
    assert history["bin_weight"] == [0.0]


def test_inactive_task_keeps_its_head():
    x, y = tiny_data(32)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting="dwa")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    model.task_activity().assign([float(t != "reg") for t in model.task_names])
    head = [v.numpy().copy() for v in model.task_variables["reg"]]
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False).history
    for before, v in zip(head, model.task_variables["reg"]):
        np.testing.assert_array_equal(before, v.numpy(), err_msg=v.path)
    assert history["reg_weight"] == [0.0, 0.0]
    assert np.all(np.array(history["reg_loss"]) > 0)


def test_taskwise_early_stopping_stops_a_task():
    x, y = tiny_data(32)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting="equal")
    head = model.task_variables["reg"]
    # Any criterion exceeds the threshold: "reg" stops at the end of epoch 2 (k = 3).
    stop = keras_mtl.callbacks.TaskwiseEarlyStopping(tasks="reg", threshold=-1e9, k=3)
    stop_after = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: epoch == 2 and (
        stopped.extend(v.numpy().copy() for v in head)))
    stopped = []
    history = model.fit(x, y, validation_data=(x, y), batch_size=16, epochs=4, verbose=0,
                        shuffle=False, callbacks=[stop, stop_after]).history
    assert stop.stopped_epoch["reg"] == 2
    assert history["reg_weight"] == [1.0, 1.0, 1.0, 0.0] and history["cls_weight"][-1] == 1.0
    for before, v in zip(stopped, head):
        np.testing.assert_array_equal(before, v.numpy(), err_msg=v.path)


def test_separate_optimizers_update_their_own_variables():
    x, y = tiny_data(32)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(0.0),
                  task_optimizer={"cls": keras.optimizers.SGD(0.1), "reg": keras.optimizers.SGD(0.0),
                                  "bin": keras.optimizers.SGD(0.0)},
                  weighting="uncertainty", weighting_optimizer=keras.optimizers.SGD(0.5))
    variables = model.trainable_variables + model.weighting.trainable_variables
    before = {id(v): v.numpy().copy() for v in variables}
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    changed = {id(v) for v in variables if not np.array_equal(before[id(v)], v.numpy())}
    expected = {id(v) for v in model.task_variables["cls"] + model.weighting.trainable_variables}
    assert changed == expected


@pytest.mark.parametrize("policy", ["raise", "skip"])
def test_a_nonfinite_step_keeps_what_the_forward_pass_changed(policy):
    # Moving statistics, the dropout seed and DWA's loss sums change in the forward pass.
    model = tiny_model(backbone=batch_statistics_backbone)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting="dwa", on_nonfinite=policy)
    x, y = nan_batch_data()
    model.fit(x[:16], {k: v[:16] for k, v in y.items()}, batch_size=16, verbose=0)
    variables = model.variables + model.optimizer.variables + model.weighting.variables
    before = [v.numpy().copy() for v in variables]
    match = "non-finite loss" if policy == "raise" else "every one of the 1 training steps"
    with pytest.raises(FloatingPointError, match=match):
        model.fit(x[16:32], {k: v[16:32] for k, v in y.items()}, batch_size=16, verbose=0)
    assert any("seed_generator" in v.path for v in variables)
    for variable, value in zip(variables, before):
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)


@pytest.mark.parametrize("weighting", ["equal", "mgda"])
def test_nonfinite_gradient_with_finite_losses_is_skipped(weighting, zero_error_model,
                                                          assert_skipped_as_if_absent):
    assert_skipped_as_if_absent(lambda: zero_error_model(on_nonfinite="skip", weighting=weighting))


@pytest.mark.parametrize("weighting", ["uncertainty", "dwa", "famo", "nash_mtl"])
def test_keras_file_round_trip(tmp_path, weighting):
    model, _ = fit_adam(weighting, epochs=1)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    x, y = tiny_data()
    for name, p in model.predict(x, verbose=0).items():
        np.testing.assert_array_equal(p, loaded.predict(x, verbose=0)[name])
    for a, b in zip(model.weighting.variables + model.optimizer.variables,
                    loaded.weighting.variables + loaded.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    loaded.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
