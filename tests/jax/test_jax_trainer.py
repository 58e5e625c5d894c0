"""`MultiTaskModel` on the JAX backend: every weighting method trains, masks and
absent tasks, separate optimizers, the task activity, the non-finite policy, `.keras`
round trips and `evaluate`. Numerical agreement with the TensorFlow trainer is
`tests/test_cross_backend.py`."""

import os
import sys

import keras
import numpy as np
import pytest

import keras_mtl

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from trainer_cases import (  # noqa: E402,F401
    fit_adam, mixed_precision_updates, nan_batch_data, state_of,
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

GRADIENT_METHODS = ["aligned_mtl", "cagrad", "graddrop", "gradvac", "imtl", "mgda", "nash_mtl",
                    "pcgrad"]
LOSS_METHODS = ["equal", "dwa", "uncertainty", "gradnorm", "rlw", "gls", "famo"]


def _method(name, mode=None):
    if name == "dtp":
        return keras_mtl.weighting.DTP(kpis={"cls": "accuracy", "bin": "accuracy"})
    if name == "fixed":
        return keras_mtl.weighting.Fixed([1.0, 0.5, 2.0])
    if mode is None:
        return keras_mtl.weighting.get(name)
    return type(keras_mtl.weighting.get(name))(gradient_mode=mode)


def test_backend_is_jax():
    assert keras.backend.backend() == "jax"


@pytest.mark.parametrize("name,mode", [(m, None) for m in LOSS_METHODS + ["dtp", "fixed"]]
                         + [(m, g) for m in GRADIENT_METHODS
                            for g in ("shared_parameters", "representation")])
def test_every_method_trains(name, mode):
    keras.utils.set_random_seed(0)
    model = tiny_model()
    before = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting=_method(name, mode))
    x, y = tiny_data()
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False).history
    for task in TASKS:
        for key in (f"{task}_loss", f"{task}_weight"):
            assert len(history[key]) == 2 and np.all(np.isfinite(history[key])), (key, history)
    assert np.isfinite(history["loss"]).all()
    moved = [not np.allclose(b, a) for b, a in zip(before, model.get_weights())]
    assert all(moved), moved
    if mode is not None:
        assert "weighting_residual" in history
    # The weighting state the step wrote is the model's after fit.
    if name == "uncertainty":
        assert not np.allclose(model.weighting.trainable_variables[0].numpy(), 0.0)
    if name in ("dwa", "famo", "gradnorm"):
        assert any(np.any(v.numpy() != 0) for v in model.weighting.non_trainable_variables)


class _BatchCount(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


@pytest.mark.parametrize("call,steps_per_execution", [
    ("fit, then a step", 1), ("fit, last step", 1), ("train_on_batch", 1),
    ("fit, then a step", 2), ("fit, long epoch", 1)])
def test_nonfinite_loss_raises_naming_the_task_and_leaves_the_failed_step_unapplied(
        call, steps_per_execution):
    x, y = nan_batch_data()  # a NaN label in the batch x[16:32]
    if call == "fit, long epoch":  # 99 batches after the failed one
        x = np.concatenate([x] + [x[32:48]] * 97)
        y = {k: np.concatenate([v] + [v[32:48]] * 97) for k, v in y.items()}
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting="equal",
                  steps_per_execution=steps_per_execution)
    model.fit(x[:16], {k: v[:16] for k, v in y.items()}, batch_size=16, verbose=0)
    after_first = state_of(model)
    counter = _BatchCount()
    with pytest.raises(FloatingPointError, match=r"non-finite loss in task\(s\) \['reg'\] at "
                                                 r"training step 1"):
        if call == "train_on_batch":
            model.train_on_batch(x[16:32], {k: v[16:32] for k, v in y.items()})
        else:
            end = 32 if call == "fit, last step" else len(x)
            model.fit(x[16:end], {k: v[16:end] for k, v in y.items()}, batch_size=16,
                      verbose=0, shuffle=False, callbacks=[counter])
    for before, now in zip(after_first, state_of(model)):
        np.testing.assert_array_equal(before, now)
    if call == "fit, long epoch":
        # Every 32 calls the train function reads the record as it was 32 calls before,
        # not only at the epoch's end.
        assert counter.batches <= 64, counter.batches
    # The model trains on from there.
    model.fit(x[:16], {k: v[:16] for k, v in y.items()}, batch_size=16, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 2


def test_the_record_is_read_every_32_calls_after_the_task_activity_is_made():
    # The task activity, made after the train function (here between two fits; the
    # task-wise early stopping callback makes it in `on_train_begin`), comes before
    # the record in the state.
    x, y = nan_batch_data()  # a NaN label in the batch x[16:32]
    x = np.concatenate([x] + [x[32:48]] * 67)  # 70 batches: reads within the epoch
    y = {k: np.concatenate([v] + [v[32:48]] * 67) for k, v in y.items()}
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting="equal")
    model.fit(x[:16], {k: v[:16] for k, v in y.items()}, batch_size=16, verbose=0)
    model.task_activity()
    counter = _BatchCount()
    with pytest.raises(FloatingPointError, match="at training step 2"):
        model.fit(x, y, batch_size=16, verbose=0, shuffle=False, callbacks=[counter])
    assert counter.batches < 70, counter.batches


def test_a_failure_found_at_the_end_of_an_epoch_leaves_the_epoch_update_unapplied():
    """The record read at the end of an epoch raises before the weighting method's
    epoch update (DWA's), so the model holds the state from before the failed step,
    as after a failure found by `train_on_batch`."""
    x, y = nan_batch_data()
    good, bad = slice(32, 48), slice(16, 32)
    states = []
    for call in ("fit", "train_on_batch"):
        keras.utils.set_random_seed(0)
        model = tiny_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting="dwa")
        model.fit(x[good], {k: v[good] for k, v in y.items()}, batch_size=16, verbose=0)
        with pytest.raises(FloatingPointError, match="at training step 2"):
            if call == "fit":  # a finite step, then the failed one, the epoch's last
                both = np.r_[good, bad]
                model.fit(x[both], {k: v[both] for k, v in y.items()}, batch_size=16,
                          verbose=0, shuffle=False)
            else:
                for part in (good, bad):
                    model.train_on_batch(x[part], {k: v[part] for k, v in y.items()})
        states.append(state_of(model))
    assert float(model.weighting.epochs_seen.numpy()) == 1.0
    for a, b in zip(*states):
        np.testing.assert_array_equal(a, b)


def test_nonfinite_step_is_skipped_as_if_its_batch_were_not_there():
    x, y = nan_batch_data()
    keep = np.r_[0:16, 32:48]
    runs = []
    for data in ((x, y), (x[keep], {k: v[keep] for k, v in y.items()})):
        keras.utils.set_random_seed(0)
        model = tiny_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting="dwa", on_nonfinite="skip")
        history = model.fit(*data, batch_size=16, epochs=2, verbose=0, shuffle=False).history
        runs.append((state_of(model), history))
    (state, history), (reference, reference_history) = runs
    assert np.all(np.isfinite(history["loss"]))
    for key in ("loss", "cls_loss", "reg_weight"):
        np.testing.assert_allclose(history[key], reference_history[key], rtol=1e-6)
    # Adam's iteration counts differ by the skipped step; everything else agrees.
    for a, b in zip(state, reference):
        if a.shape != ():
            np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("policy", ["skip", "raise"])
def test_a_nonfinite_step_changes_nothing_when_assignments_bypass_the_gate(monkeypatch, policy):
    """The optimizer's assignments are gated as they are made; were a Keras release to
    assign variables in a stateless scope some other way, the step still selects
    every value that did not go through the gate."""
    from keras_mtl.backend.jax import state
    monkeypatch.setattr(state.GatedScope, "add_update", keras.StatelessScope.add_update)
    x, y = nan_batch_data()
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting="dwa", on_nonfinite=policy)
    model.fit(x[:16], {k: v[:16] for k, v in y.items()}, batch_size=16, verbose=0)
    before = state_of(model)
    try:
        model.train_on_batch(x[16:32], {k: v[16:32] for k, v in y.items()})
    except FloatingPointError:
        assert policy == "raise"
    for a, b in zip(before, state_of(model)):
        np.testing.assert_array_equal(a, b)


def test_savedmodel_export_of_a_jax_trained_model_serves_its_predictions(tmp_path):
    tf = pytest.importorskip("tensorflow")
    model, _ = fit_adam("uncertainty")
    path = keras_mtl.export(model, tmp_path / "exported")
    serve = tf.saved_model.load(path).signatures["serving_default"]
    x, _ = tiny_data()
    served = serve(inputs=tf.constant(x))
    expected = model.predict(x, verbose=0)
    assert sorted(served) == sorted(expected) == sorted(TASKS)
    for name in TASKS:
        np.testing.assert_allclose(served[name].numpy(), expected[name], rtol=1e-5, atol=1e-6)
    assert [t["name"] for t in keras_mtl.export_lib.read_metadata(path)["tasks"]] == sorted(TASKS)


@pytest.mark.parametrize("policy,tolerance", [("mixed_float16", 0.03), ("mixed_bfloat16", 0.15)])
@pytest.mark.parametrize("name,mode", [("equal", None), ("uncertainty", None), ("gradnorm", None),
                                       ("nash_mtl", "shared_parameters"),
                                       ("nash_mtl", "representation")])
def test_mixed_precision_steps_are_float32_steps(policy, tolerance, name, mode):
    # Under mixed_float16 every loss is scaled by 2**15 before differentiation: a
    # method that saw the scale (Nash-MTL's weights depend on the gradients' norms),
    # or a gradient left scaled, would move the variables far from float32's steps.
    reference, _ = mixed_precision_updates("float32", _method(name, mode))
    updates, model = mixed_precision_updates(policy, _method(name, mode))
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        # No step was skipped for non-finite scaled gradients.
        assert int(model.optimizer.iterations.numpy()) == 3
        assert float(model.optimizer.dynamic_scale.numpy()) == 2.0 ** 15
    assert model.trainable_variables[0].dtype == "float32"
    for a, b in zip(reference, updates):
        scale = np.abs(a).max()
        assert scale > 0
        np.testing.assert_allclose(b, a, atol=tolerance * scale)


def test_mixed_float16_keras_file_round_trip(tmp_path):
    _, model = mixed_precision_updates("mixed_float16", "dwa")
    model.save(tmp_path / "model.keras")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        loaded = keras.models.load_model(tmp_path / "model.keras")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    x, y = tiny_data()
    for name, p in model.predict(x, verbose=0).items():
        np.testing.assert_array_equal(p, loaded.predict(x, verbose=0)[name])
    for a, b in zip(model.optimizer.variables + model.weighting.variables,
                    loaded.optimizer.variables + loaded.weighting.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    history = loaded.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False).history
    assert np.isfinite(history["loss"]).all()


def test_several_steps_per_execution_skip_nonfinite_steps():
    x, y = nan_batch_data()
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting="equal",
                  on_nonfinite="skip", steps_per_execution=3)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False).history
    assert np.isfinite(history["loss"]).all()
    assert all(np.isfinite(w).all() for w in model.get_weights())
