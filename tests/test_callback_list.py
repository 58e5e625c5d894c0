"""`fit`'s callback list under `compile(fast_dispatch=True)` (`keras_mtl._callback_list`):
Keras' callbacks, parameters and logs, without the per-batch calls when no callback has
a batch hook; by default, Keras' own list."""

import numpy as np
import keras
import pytest
import tensorflow as tf


@pytest.fixture
def make_data(two_task_data):
    """`(n, batch) -> tf.data.Dataset` of `two_task_data` on 6 features."""
    def make(n=40, batch=8):
        return tf.data.Dataset.from_tensor_slices(two_task_data(n, features=6)).batch(batch)
    return make


@pytest.fixture
def make_model(two_task_model):
    """`(**compile_args) -> model`: `two_task_model` on 6 features, compiled with Adam
    and `fast_dispatch=True` unless `compile_args` say otherwise."""
    def make(**compile_args):
        model = two_task_model(features=6, metrics=False)
        model.compile(optimizer="adam", **{"fast_dispatch": True, **compile_args})
        return model
    return make


class _Params(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seen = dict(self.params)


class _Batches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.train, self.legacy, self.test = [], [], []

    def on_train_batch_end(self, batch, logs=None):
        self.train.append((batch, sorted(logs)))

    def on_batch_begin(self, batch, logs=None):  # Keras' older name for train batches
        self.legacy.append(batch)

    def on_test_batch_end(self, batch, logs=None):
        self.test.append(batch)


@pytest.fixture
def list_calls(monkeypatch):
    """Counts the batch-level calls that reach Keras' `CallbackList`."""
    calls = []
    for hook in ("on_train_batch_begin", "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end"):
        keras_hook = getattr(keras.callbacks.CallbackList, hook)

        def counted(self, batch, logs=None, hook=hook, keras_hook=keras_hook):
            calls.append(hook)
            return keras_hook(self, batch, logs)

        monkeypatch.setattr(keras.callbacks.CallbackList, hook, counted)
    return calls


@pytest.mark.parametrize("fit_args", [
    dict(epochs=2), dict(epochs=3, steps_per_epoch=3), dict(epochs=1, verbose=2), dict(epochs=2, filtered=True),
], ids=["known", "steps_per_epoch", "verbose", "unknown_cardinality"])
def test_callback_parameters_are_keras_own(fit_args, make_model, make_data):
    fit_args = dict(fit_args)
    data = make_data()
    if fit_args.pop("filtered", False):
        data = data.filter(lambda x, y: True)
    fit_args.setdefault("verbose", 0)
    model = make_model()
    plain = keras.Model(model.inputs, model.outputs)
    plain.compile(optimizer="adam", loss={"a": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                                          "b": "mse"})
    ours, keras_own = _Params(), _Params()
    repeat = data.repeat() if "steps_per_epoch" in fit_args else data
    model.fit(repeat, callbacks=[ours], **fit_args)
    plain.fit(repeat, callbacks=[keras_own], **fit_args)
    assert ours.seen == keras_own.seen
    if "steps_per_epoch" not in fit_args:
        assert ours.seen["steps"] == (None if data.cardinality() < 0 else 5)


def test_no_batch_calls_without_batch_hooks(list_calls, make_model, make_data):
    model = make_model(weighting="dwa")
    history = model.fit(make_data(), validation_data=make_data(), epochs=3, verbose=0).history
    assert list_calls == []
    assert len(history["a_loss"]) == len(history["val_b_loss"]) == 3
    assert not np.allclose(history["a_weight"][2], 1.0)  # DWA's epoch-level update ran


def test_keras_own_list_by_default(list_calls, make_model, make_data):
    model = make_model(fast_dispatch=False)
    model.fit(make_data(), validation_data=make_data(n=16), epochs=2, verbose=0)
    assert list_calls.count("on_train_batch_end") == 10 and list_calls.count("on_test_batch_end") == 4


def test_lambda_callback_batch_hooks_count(list_calls, make_model, make_data):
    batches = []
    hook = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: batches.append(batch))
    make_model().fit(make_data(), epochs=1, verbose=0, callbacks=[hook])
    assert batches == [0, 1, 2, 3, 4] and list_calls.count("on_train_batch_end") == 5


def test_batch_hooks_get_every_batch_with_its_logs(list_calls, make_model, make_data):
    model = make_model()
    batches = _Batches()
    model.fit(make_data(), validation_data=make_data(n=16), epochs=2, verbose=0, callbacks=[batches])
    assert [b for b, _ in batches.train] == [0, 1, 2, 3, 4] * 2
    assert batches.legacy == [0, 1, 2, 3, 4] * 2
    assert all(keys == sorted(["a_loss", "a_weight", "b_loss", "b_weight", "loss"]) for _, keys in batches.train)
    assert batches.test == [0, 1] * 2
    assert list_calls.count("on_train_batch_end") == 10 and list_calls.count("on_test_batch_end") == 4


def test_validation_hooks_alone_keep_only_validation_calls(list_calls, make_model, make_data):
    class TestOnly(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batches = 0

        def on_test_batch_end(self, batch, logs=None):
            self.batches += 1

    model = make_model()
    test_only = TestOnly()
    model.fit(make_data(), validation_data=make_data(n=16), epochs=2, verbose=0, callbacks=[test_only])
    assert test_only.batches == 4
    assert set(list_calls) == {"on_test_batch_begin", "on_test_batch_end"}


def test_xla_nonfinite_check_in_the_function_needs_no_batch_calls(list_calls, make_model, make_data):
    model = make_model(jit_compile=True)
    model.fit(make_data(), epochs=1, verbose=0)
    assert list_calls == []
    keras_function = make_model(jit_compile=True, steps_per_execution=2)
    keras_function.fit(make_data(), epochs=1, verbose=0)
    assert list_calls == []


def test_a_given_callback_list_is_used_with_the_models_callbacks(make_model, make_data):
    model = make_model(weighting="dwa")
    batches = _Batches()
    given = keras.callbacks.CallbackList([batches], add_history=True, model=model)
    for _ in range(2):  # the model's own callbacks are not added twice
        history = model.fit(make_data(), epochs=3, verbose=0, callbacks=given)
    assert len(batches.train) == 30
    assert not np.allclose(history.history["a_weight"][2], 1.0)
    assert sum(type(c).__name__ == "_EpochEndCallback" for c in given.callbacks) == 1
