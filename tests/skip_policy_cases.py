"""`on_nonfinite="skip"`: skipped steps are logged, warned about, and an epoch whose
every step was skipped raises. Every backend runs `test_skip_policy`
(tests/test_skip_policy.py on TensorFlow, tests/jax/test_skip_policy.py on JAX)."""

import warnings

import keras
import numpy as np
import pytest

import keras_mtl


def _two_tasks():
    return [keras_mtl.Task("a", head=3, loss=keras.losses.SparseCategoricalCrossentropy(
                from_logits=True)),
            keras_mtl.Task("b", head=1, loss="mse")]


def _model(**compile_args):
    model = keras_mtl.build("hard_sharing", _two_tasks(), backbone="mlp", input_shape=(8,))
    model.compile(optimizer="adam", on_nonfinite="skip", **compile_args)
    return model


def _data(n=32, nan_rows=()):
    rng = np.random.default_rng(0)
    y = {"a": rng.integers(0, 3, size=(n,)), "b": rng.normal(size=(n, 1)).astype("float32")}
    y["b"][list(nan_rows)] = np.nan
    return rng.normal(size=(n, 8)).astype("float32"), y


def some_steps_skipped_are_logged_and_warned():
    # Batches of 8: rows 3 and 20 spoil steps 0 and 2 of each epoch's 4.
    model = _model()
    x, y = _data(nan_rows=(3, 20))
    with pytest.warns(UserWarning, match=r"skipped 2 of 4 training steps in epoch 0") as record:
        history = model.fit(x, y, batch_size=8, shuffle=False, epochs=2, verbose=0)
    assert history.history["skipped_steps"] == [2.0, 2.0]
    # One warning per epoch, each with its count.
    skipped = [str(w.message) for w in record if "skipped" in str(w.message)]
    assert len(skipped) == 2 and "in epoch 1" in skipped[1]
    assert "val_skipped_steps" not in history.history


def no_skipped_step_no_warning():
    model = _model()
    x, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, validation_data=(x, y))
    assert history.history["skipped_steps"] == [0.0]
    assert "val_skipped_steps" not in history.history
    assert "skipped_steps" not in model.evaluate(x, y, verbose=0, return_dict=True)


def every_step_skipped_raises():
    # A learning rate that diverges: after a few steps every step is non-finite.
    model = keras_mtl.build("hard_sharing", _two_tasks(), backbone="mlp", input_shape=(8,))
    model.compile(optimizer=keras.optimizers.SGD(1e6), on_nonfinite="skip")
    x, y = _data()
    with pytest.raises(FloatingPointError,
                       match=r"every one of the 4 training steps of epoch \d+ was skipped"):
        model.fit(x, y, batch_size=8, shuffle=False, epochs=6, verbose=0)


def default_policy_logs_no_skipped_steps():
    model = keras_mtl.build("hard_sharing", _two_tasks(), backbone="mlp", input_shape=(8,))
    model.compile(optimizer="adam")
    x, y = _data()
    assert "skipped_steps" not in model.fit(x, y, batch_size=8, epochs=1, verbose=0).history


@pytest.mark.parametrize("case", [
    some_steps_skipped_are_logged_and_warned, no_skipped_step_no_warning,
    every_step_skipped_raises, default_policy_logs_no_skipped_steps],
    ids=lambda c: c.__name__)
def test_skip_policy(case):
    case()
