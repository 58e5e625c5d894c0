"""Non-finite losses, bad input, killed runs, SavedModel metadata, XLA, mixed precision."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import keras
import pytest
import tensorflow as tf

import keras_mtl
from weighting_utils import batch_statistics_backbone, fit_and_step_logs

_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture
def make_model(two_task_model):
    """`(**compile_args) -> model`: `two_task_model`, compiled with Adam for the shared
    variables and SGD with momentum for the heads."""
    def make(**compile_args):
        model = two_task_model()
        model.compile(optimizer="adam", task_optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                      **compile_args)
        return model
    return make


def _state(model):
    """Every variable a train step may change: the model's, its optimizers' and its
    weighting method's."""
    return model.variables + model.optimizer.variables + model.weighting.variables


def test_nonfinite_loss_raises_naming_task_and_step(make_model, two_task_data):
    model = make_model()
    x, y = two_task_data()
    y["b"][19] = np.nan  # in the third batch of 8
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"non-finite loss in task\(s\)\] \[b\] \[at training step\] \[2\]"):
        model.fit(x, y, batch_size=8, shuffle=False, epochs=1, verbose=0)


@pytest.mark.parametrize("weighting,backbone", [("equal", "mlp"), ("dwa", "mlp"),
                                                ("equal", batch_statistics_backbone)],
                         ids=["equal", "dwa", "batch-statistics"])
@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_nonfinite_loss_raises_before_the_step_changes_the_model(
        two_tasks, two_task_data, steps_per_execution, weighting, backbone):
    # Neither the update nor what the forward pass changed before the check (DWA's loss
    # sums, moving statistics, the dropout seed) keeps the failed step.
    model = keras_mtl.build("hard_sharing", two_tasks(), backbone=backbone, input_shape=(8,))
    model.compile(optimizer="adam", task_optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  steps_per_execution=steps_per_execution, weighting=weighting)
    x, y = two_task_data()
    model.fit(x[:8], {k: v[:8] for k, v in y.items()}, batch_size=8, verbose=0)
    before = [v.numpy().copy() for v in _state(model)]
    y["b"][9] = np.nan  # in the second batch of 8
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"at training step\] \[1\]"):
        model.fit(x[8:16], {k: v[8:16] for k, v in y.items()}, batch_size=8, verbose=0)
    for variable, value in zip(_state(model), before):
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_ignore_trains_as_raise_on_finite_steps_and_applies_a_nonfinite_one(
        make_model, two_task_data, jit_compile):
    x, y = two_task_data()
    states = []
    for policy in ("raise", "ignore"):
        keras.utils.set_random_seed(0)
        model = make_model(on_nonfinite=policy, jit_compile=jit_compile)
        model.fit(x, y, batch_size=8, shuffle=False, epochs=1, verbose=0)
        states.append([v.numpy() for v in _state(model)])
    for a, b in zip(*states):
        np.testing.assert_array_equal(a, b)
    bad = {"a": y["a"][:8], "b": np.full((8, 1), np.nan, "float32")}
    logs = model.train_on_batch(x[:8], bad, return_dict=True)
    assert np.isnan(logs["b_loss"]) and int(model.optimizer.iterations.numpy()) == 5
    assert np.isnan(model.shared_variables[0].numpy()).any()


def test_nonfinite_loss_skip_leaves_every_variable_bit_identical(make_model, two_task_data):
    model = make_model(on_nonfinite="skip")
    x, y = two_task_data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    state = [v.numpy().copy() for v in _state(model)]
    iterations = int(model.optimizer.iterations)
    bad = {"a": y["a"][:8], "b": np.full((8, 1), np.inf, "float32")}
    logs = model.train_on_batch(x[:8], bad, return_dict=True)
    for before, v in zip(state, _state(model)):
        np.testing.assert_array_equal(before, v.numpy(), err_msg=v.path)
    assert np.isfinite(logs["loss"])
    model.train_on_batch(x[:8], {k: v[:8] for k, v in y.items()})
    assert model.optimizer.iterations.numpy() == iterations + 1


def test_skipped_nonfinite_step_leaves_the_random_state_of_a_method_given_by_name(make_model,
                                                                                  two_task_data):
    x, y = two_task_data(16)
    first, second = ({k: v[:8] for k, v in y.items()}, {k: v[8:] for k, v in y.items()})
    bad = {"a": y["a"][:8], "b": np.full((8, 1), np.inf, "float32")}
    runs = []
    for batches in ([(x[:8], first), (x[8:], second)],
                    [(x[:8], first), (x[:8], bad), (x[8:], second)]):
        keras.utils.set_random_seed(0)
        model = make_model(weighting="rlw", on_nonfinite="skip")
        for batch in batches:
            logs = model.train_on_batch(*batch, return_dict=True)
        runs.append((logs, [v.numpy() for v in model.weights]))
    (logs, weights), (logs_skipped, weights_skipped) = runs
    # The last step drew the same random task weights.
    assert logs["a_weight"] == logs_skipped["a_weight"] != 0.5
    for a, b in zip(weights, weights_skipped):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("weighting,jit_compile", [("equal", False), ("mgda", False), ("equal", True)])
def test_nonfinite_gradient_with_finite_losses_is_skipped(weighting, jit_compile, zero_error_model,
                                                          assert_skipped_as_if_absent):
    # A skipped step is as if its batch were not there: same weights, same logs.
    assert_skipped_as_if_absent(lambda: zero_error_model(
        on_nonfinite="skip", weighting=weighting, jit_compile=jit_compile))


@pytest.mark.parametrize("jit_compile,steps_per_execution,applied", [
    (False, 1, 0),  # asserted in the step, before the update
    (True, 1, 1),  # recorded by the XLA step, read by the train function after it
    (True, 2, 2),  # recorded by the XLA step, read after each execution of two steps
])
def test_nonfinite_gradient_raises_at_its_own_step(jit_compile, steps_per_execution, applied,
                                                   zero_error_model, zero_error_data):
    model = zero_error_model(jit_compile=jit_compile, steps_per_execution=steps_per_execution)
    x, y = zero_error_data(zero_batch=2)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"non-finite gradient with finite losses of task\(s\)\]? "
                             r"\['?a'?,? '?b'?\] \[?at training step\]? \[?2\]?,? \[?losses"):
        model.fit(x, y, batch_size=8, shuffle=False, epochs=1, verbose=0)
    assert model.optimizer.iterations.numpy() == 2 + applied


def test_bad_input_errors_before_training(make_model, two_task_data):
    model = make_model()
    x, y = two_task_data()
    with pytest.raises(ValueError, match=r"Task 'b': label shape \(32, 3\) does not fit"):
        model.fit(x, {"a": y["a"], "b": np.zeros((32, 3), "float32")}, verbose=0)
    with pytest.raises(ValueError, match="training dataset is empty"):
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).take(0).batch(4), verbose=0)
    with pytest.raises(ValueError, match="incompatible"):
        model.fit(np.zeros((32, 9), "float32"), y, verbose=0)
    with pytest.raises(ValueError, match="on_nonfinite"):
        make_model(on_nonfinite="stop")
    # After the failed calls the model still trains.
    assert np.isfinite(model.fit(x, y, verbose=0).history["loss"][0])


def test_empty_data_of_unknown_length_raises_like_known_empty_data(make_model, two_task_data):
    model = make_model()
    x, y = two_task_data()
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    nothing = data.filter(lambda *_: False)
    assert int(nothing.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    for empty in (nothing, data.take(0)):
        with pytest.raises(ValueError, match="^The training dataset is empty: x gave no batch"):
            model.fit(empty, verbose=0)
        with pytest.raises(ValueError, match="^The validation dataset is empty: validation_data"):
            model.fit(data, validation_data=empty, verbose=0)
    with pytest.raises(ValueError, match="^The evaluation dataset is empty"):
        model.evaluate(nothing, verbose=0)
    with pytest.raises(ValueError, match="empty generator"):  # Keras' own check
        model.fit((b for b in ()), verbose=0)
    # After the failed calls the model still trains and validates.
    history = model.fit(data, validation_data=data, verbose=0).history
    assert np.isfinite(history["loss"][0]) and np.isfinite(history["val_loss"][0])


_RUN = textwrap.dedent("""
    import os, signal, sys
    import numpy as np, keras, keras_mtl
    backup, out, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])

    @keras.saving.register_keras_serializable(package="reliability_test")
    class Learned(keras_mtl.weighting.Weighting):
        def build(self, input_shape):
            self.logits = self.add_weight(shape=input_shape, initializer="zeros", name="logits")
            self.seen = self.add_weight(shape=input_shape, initializer="zeros", trainable=False, name="seen")
            super().build(input_shape)
        def task_weights(self, losses, training=False):
            if training:
                self.seen.assign_add(losses)
            return keras.ops.softmax(self.logits) * self.num_tasks

    class Kill(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.steps = 0
        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if self.steps == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    keras.utils.set_random_seed(0)
    tasks = [keras_mtl.Task("a", head=3, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
             keras_mtl.Task("b", head=1, loss="mse")]
    model = keras_mtl.build("hard_sharing", tasks, backbone="mlp", input_shape=(8,))
    model.compile(optimizer="adam", task_optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  weighting_optimizer=keras.optimizers.Adam(0.01), weighting=Learned())
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 8)).astype("float32")
    y = {"a": rng.integers(0, 3, 48), "b": rng.normal(size=(48, 1)).astype("float32")}
    callbacks = [keras.callbacks.BackupAndRestore(backup)] + ([Kill()] if kill_at else [])
    history = model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0, callbacks=callbacks)
    state = model.variables + model.optimizer.variables + model.weighting.variables
    np.savez(out, *[v.numpy() for v in state], epochs=np.array(history.epoch))
""")


@pytest.mark.slow
def test_killed_run_resumed_with_backup_and_restore_matches_uninterrupted(tmp_path):
    def run(backup, out, kill_at):
        return subprocess.run([sys.executable, "-c", _RUN, str(backup), str(out), str(kill_at)],
                              capture_output=True, text=True, env=_ENV, timeout=300)

    killed = run(tmp_path / "backup", tmp_path / "unused.npz", 15)  # mid-epoch 3 of 4
    assert killed.returncode == -9, killed.stderr[-2000:]
    resumed = run(tmp_path / "backup", tmp_path / "resumed.npz", 0)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = run(tmp_path / "other_backup", tmp_path / "straight.npz", 0)
    assert straight.returncode == 0, straight.stderr[-2000:]
    a, b = np.load(tmp_path / "resumed.npz"), np.load(tmp_path / "straight.npz")
    # The resumed run redid only the interrupted epoch and the last one.
    assert list(a["epochs"]) == [2, 3] and list(b["epochs"]) == [0, 1, 2, 3]
    assert len(a.files) == len(b.files) > 10
    for key in (f for f in a.files if f != "epochs"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_savedmodel_metadata_and_signature_survive_reexport(tmp_path, make_model, two_task_data):
    model = make_model()
    x, y = two_task_data()
    path = keras_mtl.export(model, tmp_path / "first")
    meta = keras_mtl.export_lib.read_metadata(path)
    assert meta["keras_mtl_version"] == keras_mtl.__version__
    assert [t["name"] for t in meta["tasks"]] == ["a", "b"]
    assert [t["shape"] for t in meta["tasks"]] == [[None, 3], [None, 1]]
    loaded = tf.saved_model.load(path)
    tf.saved_model.save(loaded, str(tmp_path / "second"), signatures=loaded.signatures)
    again = tf.saved_model.load(str(tmp_path / "second")).signatures["serving_default"]
    out = again(inputs=tf.constant(x))
    assert sorted(out) == ["a", "b"]
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(out["b"].numpy(), expected["b"], rtol=1e-5, atol=1e-6)
    json.dumps(meta)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_with_two_optimizers(policy, tmp_path, make_model, two_task_data):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = make_model()
        x, y = two_task_data()
        losses = model.fit(x, y, batch_size=8, epochs=2, verbose=0).history["loss"]
        assert np.all(np.isfinite(losses))
        assert model.trainable_variables[0].dtype == "float32"
        model.save(tmp_path / "m.keras")
        loaded = keras.models.load_model(tmp_path / "m.keras")
        for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("on_nonfinite", ["raise", "skip"])
def test_a_loss_scale_overflow_counts_for_nothing_in_the_weight_logs(on_nonfinite, make_model,
                                                                     two_task_data):
    # The first batch's loss-scaled float16 gradients overflow: the LossScaleOptimizer
    # skips that step and lowers the scale, and MGDA's weights for it are NaN. The
    # epoch's weight and residual means are those of the applied step alone.
    x, y = two_task_data(16)
    y["b"][:8] *= 1e4
    logs, reference = fit_and_step_logs(
        lambda: make_model(weighting="mgda", on_nonfinite=on_nonfinite), x, y)
    for key in ("a_weight", "b_weight", "weighting_residual"):
        assert np.isfinite(reference[key]), reference
        np.testing.assert_allclose(logs[key], reference[key], rtol=1e-6, err_msg=key)


def _first_gradient_matrix_norm(policy, mode, make_model, two_task_data):
    keras.mixed_precision.set_global_policy(policy)
    norms = []

    class Recording(keras_mtl.weighting.NashMTL):
        def gramian_weights(self, gram, losses, present=None):
            # The Frobenius norm of the gradient matrix.
            norms.append(float(keras.ops.sqrt(keras.ops.trace(gram))))
            return super().gramian_weights(gram, losses, present)

    try:
        keras.utils.set_random_seed(0)
        model = make_model(weighting=Recording(max_norm=0.1, gradient_mode=mode), run_eagerly=True)
        x, y = two_task_data(8)
        model.train_on_batch(x, y)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return norms[0]


@pytest.mark.parametrize("mode", ["shared_parameters", "representation"])
def test_gradient_methods_see_gradients_without_the_loss_scale(mode, make_model, two_task_data):
    # Under mixed_float16 the loss is scaled by 2**15 before differentiation.
    unscaled = _first_gradient_matrix_norm("float32", mode, make_model, two_task_data)
    mixed = _first_gradient_matrix_norm("mixed_float16", mode, make_model, two_task_data)
    assert unscaled > 0
    np.testing.assert_allclose(mixed, unscaled, rtol=0.02)


def _every_weighting():
    special = {"fixed": lambda: keras_mtl.weighting.Fixed([0.5, 2.0]),
               "dtp": lambda: keras_mtl.weighting.DTP(kpis={"a": "accuracy"}),
               "trimmed_mean": lambda: keras_mtl.weighting.TrimmedMean(trim_number=0)}
    # Krum needs at least 3 tasks (n_byzantine + 3); these models have 2.
    return [(name, special.get(name, lambda name=name: name))
            for name in keras_mtl.weighting.available() if name != "krum"]


@pytest.mark.slow
@pytest.mark.parametrize("name,make", _every_weighting(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_weighting_method_trains_under_xla(name, make, make_model, two_task_data):
    model = make_model(weighting=make(), jit_compile=True)
    x, y = two_task_data(16)
    losses = model.fit(x, y, batch_size=8, epochs=1, verbose=0).history["loss"]
    assert model.jit_compile and np.all(np.isfinite(losses))


@pytest.mark.parametrize("call", ["fit", "train_on_batch"])
def test_nonfinite_loss_raises_under_xla_after_the_step(call, make_model, two_task_data):
    model = make_model(jit_compile=True)
    assert model.jit_compile
    x, y = two_task_data()
    y["b"][19] = np.inf  # in the third batch of 8
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"non-finite loss in task\(s\) \['b'\] at training step 2, losses \[\d"):
        if call == "fit":
            model.fit(x, y, batch_size=8, shuffle=False, epochs=1, verbose=0)
        else:
            for start in range(0, 32, 8):
                model.train_on_batch(x[start:start + 8], {k: v[start:start + 8] for k, v in y.items()})
    assert model.optimizer.iterations.numpy() == 3


def test_xla_nonfinite_check_runs_inside_the_fast_dispatch_train_function(monkeypatch, make_model,
                                                                          two_task_data):
    # The one-call train function asserts on the record itself: no eager read of it
    # after each batch, and the error still comes right after the failing step.
    model = make_model(jit_compile=True, fast_dispatch=True)
    x, y = two_task_data()
    reads = []
    read = model._raise_recorded_nonfinite
    monkeypatch.setattr(model, "_raise_recorded_nonfinite", lambda: reads.append(1) or read())
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert reads == []
    y["b"][12] = np.nan  # in the second batch of 8
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"non-finite loss in task\(s\) \['b'\] at training step 9, losses \[\d"):
        model.fit(x, y, batch_size=8, shuffle=False, epochs=1, verbose=0)
    assert model.optimizer.iterations.numpy() == 10 and len(reads) == 1
    # The record is reset for the next fit: its error names that fit's first failed step
    # (under XLA the failed step was applied, so every step fails from there on).
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"at training step 10,"):
        model.fit(x, y, batch_size=8, shuffle=False, epochs=1, verbose=0)


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_xla_step_logs_show_only_the_models_metrics(make_model, two_task_data, steps_per_execution):
    # The step reports its non-finite record with its logs; the train function takes it out.
    model = make_model(jit_compile=True, steps_per_execution=steps_per_execution)
    x, y = two_task_data()
    batch_logs = []
    keep = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batch_logs.append(set(logs)))
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[keep]).history
    expected = set(model.get_metrics_result())
    assert set(history) == expected and batch_logs and all(k == expected for k in batch_logs)
    assert set(model.train_on_batch(x[:8], {k: v[:8] for k, v in y.items()}, return_dict=True)) == expected


def test_xla_nonfinite_check_with_several_steps_per_execution(make_model, two_task_data):
    # Keras' own train function, then a read of the record after each execution.
    model = make_model(jit_compile=True, steps_per_execution=2)
    x, y = two_task_data()
    y["b"][19] = np.inf  # in the third batch of 8
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"non-finite loss in task\(s\) \['b'\] at training step 2, losses \[\d"):
        model.fit(x, y, batch_size=8, shuffle=False, epochs=1, verbose=0)
    assert model.optimizer.iterations.numpy() == 4
