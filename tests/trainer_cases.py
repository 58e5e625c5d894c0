"""Trainer checks that the JAX and PyTorch tiers share (tests/jax/test_jax_trainer.py,
tests/pytorch/test_torch_trainer.py import the `test_*` functions and the helpers), on
the tiny model of `weighting_utils`."""

import functools

import keras
import numpy as np
import pytest

import keras_mtl
from keras_mtl.backbones.mlp import mlp
from weighting_utils import TASKS, fit_and_step_logs, tiny_data, tiny_model


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

