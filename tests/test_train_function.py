"""The train and test functions: Keras' own by default; with
`compile(fast_dispatch=True)` one compiled call per step
(`keras_mtl/backend/tensorflow/fast_dispatch.py`) that computes exactly what Keras'
own functions compute, and falls back to them where its private internals are missing."""

import logging

import numpy as np
import keras
import pytest
import tensorflow as tf

from keras_mtl.backend.tensorflow import fast_dispatch


@pytest.fixture
def make_dataset(two_task_data):
    """`(n, batch, masked) -> tf.data.Dataset` of `two_task_data` with two outputs for
    task b; `masked=True` adds sample weights that label b in a random half."""
    def make(n=96, batch=16, masked=False):
        x, y = two_task_data(n, b_units=2)
        if masked:
            w = {"a": np.ones(n, "float32"),
                 "b": (np.random.default_rng(1).random(n) < 0.5).astype("float32")}
            return tf.data.Dataset.from_tensor_slices((x, y, w)).batch(batch)
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
    return make


@pytest.fixture
def make_model(two_task_model):
    """`(**compile_args) -> model`: `two_task_model` with two outputs for task b, its
    weights drawn from seed 0 on each call, compiled with Adam(1e-2)."""
    def make(**compile_args):
        keras.utils.set_random_seed(0)
        model = two_task_model(b_units=2)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), **compile_args)
        return model
    return make


@pytest.fixture
def trained(make_model):
    """`(fast, jit_compile, weighting, data, epochs=2) -> (model, history, state)`: a
    model fitted on `data` (also its validation data), with `fast_dispatch=fast`."""
    def train(fast, jit_compile, weighting, data, epochs=2):
        model = make_model(weighting=weighting, jit_compile=jit_compile, fast_dispatch=fast)
        history = model.fit(data, epochs=epochs, validation_data=data, verbose=0).history
        state = [v.numpy() for v in model.variables + model.optimizer.variables
                 + model.weighting.variables]
        return model, history, state
    return train


@pytest.mark.parametrize("jit_compile,weighting,masked", [
    (False, "dwa", False), (False, "uncertainty", True), (True, "pcgrad", False)])
def test_same_training_as_keras_functions(jit_compile, weighting, masked, make_dataset, trained):
    data = make_dataset(masked=masked)
    ours, ours_history, ours_state = trained(True, jit_compile, weighting, data)
    _, keras_history, keras_state = trained(False, jit_compile, weighting, data)
    assert set(ours_history) >= {"loss", "a_loss", "b_weight", "a_accuracy", "val_loss",
                                 "val_b_loss"}
    assert ours_history == keras_history
    for a, b in zip(ours_state, keras_state):
        np.testing.assert_array_equal(a, b)
    assert int(ours.optimizer.iterations) == 2 * 6


@pytest.fixture
def fast_functions(monkeypatch):
    """The steps (train or test) for which `fast_dispatch` made a function."""
    made = []
    make = fast_dispatch.one_call_per_step

    def recording(model, step, keras_function, **kwargs):
        made.append(step.__name__)
        return make(model, step, keras_function, **kwargs)

    monkeypatch.setattr(fast_dispatch, "one_call_per_step", recording)
    return made


def test_keras_own_functions_by_default_and_fast_dispatch_on_request(fast_functions, make_dataset,
                                                                     trained):
    data = make_dataset()
    trained(False, False, "equal", data, epochs=1)
    assert fast_functions == []
    trained(True, False, "equal", data, epochs=1)
    assert fast_functions == ["train_step", "test_step"]


def test_falls_back_to_keras_functions_with_a_warning_where_internals_are_missing(
        fast_functions, monkeypatch, make_dataset, trained):
    data = make_dataset()
    # As in a TensorFlow whose concrete functions have no `_call_flat`.
    monkeypatch.setattr(fast_dispatch, "_concrete_function_class", lambda: object)
    with pytest.warns(UserWarning, match=r"fast_dispatch=True\) needs tensorflow "
                                         r"ConcreteFunction._call_flat.*Keras' own"):
        _, history, state = trained(True, False, "dwa", data)
    assert fast_functions == []
    _, keras_history, keras_state = trained(False, False, "dwa", data)
    assert history == keras_history
    for a, b in zip(state, keras_state):
        np.testing.assert_array_equal(a, b)


def test_fast_dispatch_internals_exist_in_the_checked_versions(make_model):
    # Checked on keras 3.15.1 and tensorflow 2.21.0: a release without them makes
    # fast_dispatch fall back to Keras' own functions (the test above).
    model = make_model()
    assert fast_dispatch.missing(model) == [], (keras.__version__, tf.__version__)


def test_fast_dispatch_is_saved_with_the_compile_config(tmp_path, make_model):
    model = make_model(fast_dispatch=True)
    assert model.get_compile_config()["fast_dispatch"] is True
    path = str(tmp_path / "fast.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.fast_dispatch is True
    assert keras.saving.load_model(_saved(make_model(), tmp_path)).fast_dispatch is False


def _saved(model, tmp_path):
    path = str(tmp_path / "default.keras")
    model.save(path)
    return path


def test_uses_one_compiled_function_and_ends_epochs_of_unknown_length(make_dataset, trained):
    # After filter() the dataset's length is unknown: the first epoch ends when
    # `get_next` raises inside the compiled function.
    data = make_dataset(n=80).filter(lambda x, y: True)
    assert int(data.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    model, history, _ = trained(True, False, "equal", data, epochs=3)
    assert len(history["loss"]) == 3 and all(np.isfinite(history["loss"]))
    assert int(model.optimizer.iterations) == 3 * 5
    # Keras' own function would raise StopIteration here; ours reads the batch itself.
    with pytest.raises(tf.errors.OutOfRangeError):
        model.train_function(iter(data.take(0)))
    with pytest.raises(tf.errors.OutOfRangeError):
        model.test_function(iter(data.take(0)))


def test_keeps_keras_functions_for_several_steps_per_execution_and_single_batches(make_dataset,
                                                                                   make_model):
    data = make_dataset()
    model = make_model(steps_per_execution=4, fast_dispatch=True)
    model.fit(data, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 6
    with pytest.raises(StopIteration):  # Keras' multi-step function
        model.train_function(iter(data.take(0)))
    model.compile(optimizer="adam", fast_dispatch=True)
    x, y = next(iter(data))
    logs = model.train_on_batch(x, y, return_dict=True)
    assert set(logs) >= {"loss", "a_loss", "b_loss"} and np.isfinite(logs["loss"])


class _CountingCalls:
    """A `tf.function` whose calls through `__call__` are counted."""

    def __init__(self, function):
        self.function, self.calls = function, 0

    def __call__(self, iterator):
        self.calls += 1
        return self.function(iterator)

    def get_concrete_function(self, iterator):
        return self.function.get_concrete_function(iterator)


def _running_sum():
    total = tf.Variable(0.0)

    @tf.function(reduce_retracing=True)
    def add_next(iterator):
        batch = iterator.get_next()
        total.assign_add(tf.reduce_sum(batch))
        return {"total": total.read_value(), "batch": batch}

    return add_next


def test_iterator_call_runs_the_traced_function_directly_on_the_same_iterator():
    data = tf.data.Dataset.range(1, 11).map(lambda i: tf.cast(i, "float32") ** 2).batch(3)
    function = _CountingCalls(_running_sum())
    call, reference = fast_dispatch.IteratorCall(function), _running_sum()
    iterator, reference_iterator = iter(data), iter(data)
    for _ in range(4):  # batches of 3, 3, 3 and 1
        got, want = call(iterator), reference(reference_iterator)
        np.testing.assert_array_equal(got["batch"], want["batch"])
        assert float(got["total"]) == float(want["total"])
    assert float(got["total"]) == sum(i * i for i in range(1, 11))
    assert function.calls == 1  # only the first call matched the argument to a trace
    with pytest.raises(tf.errors.OutOfRangeError):
        call(iterator)
    # A new iterator, here of another element spec, goes through the function again.
    matrices = iter(data.map(lambda b: tf.reshape(b, (-1, 1))))
    first = call(matrices)
    assert first["batch"].shape == (3, 1) and function.calls == 2
    assert float(call(matrices)["total"]) == float(want["total"]) + 1 + 4 + 9 + 16 + 25 + 36
    assert function.calls == 2
    tf.config.run_functions_eagerly(True)
    try:
        call(matrices)
        assert function.calls == 3  # eager functions run as Python, call by call
    finally:
        tf.config.run_functions_eagerly(False)


def test_iterator_call_keeps_tensorflow_retracing_warning_quiet():
    # Six functions of one Python function (as six models' train functions), each
    # traced once and then called on an epoch's iterator: a retracing warning would
    # say tracing happened at most calls, if the direct calls did not count.
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = tf.get_logger()
    logger.addHandler(handler)
    try:
        data = tf.data.Dataset.range(12).map(lambda i: tf.cast(i, "float32")).batch(1)
        for _ in range(6):
            call, iterator = fast_dispatch.IteratorCall(_running_sum()), iter(data)
            for _ in range(12):
                call(iterator)
    finally:
        logger.removeHandler(handler)
    assert not [m for m in messages if "retracing" in m]
