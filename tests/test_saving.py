"""`.keras` round trips and SavedModel export."""

import subprocess
import sys

import numpy as np
import keras
import pytest

import keras_mtl
from keras_mtl.weighting import Weighting


@keras.saving.register_keras_serializable(package="keras_mtl_tests")
class _LearnedSoftmaxWeights(Weighting):
    """Trainable logits (its own optimizer) and a non-trainable step counter."""

    def build(self, input_shape):
        self.logits = self.add_weight(shape=input_shape, initializer="zeros", name="logits")
        self.steps = self.add_weight(shape=(), initializer="zeros", trainable=False, name="steps")
        super().build(input_shape)

    def task_weights(self, losses, training=False):
        if training:
            self.steps.assign_add(1.0)
        return keras.ops.softmax(self.logits) * self.num_tasks


def _model(seed):
    keras.utils.set_random_seed(seed)
    tasks = [
        keras_mtl.Task("colour", tap="block1", metrics=["accuracy"],
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       head=[keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)]),
        keras_mtl.Task("size", loss="mse", head=[keras.layers.Flatten(), keras.layers.Dense(1)]),
    ]
    model = keras_mtl.build("hard_sharing", tasks, backbone="conv", input_shape=(8, 8, 3))
    return model


def _compile(model):
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  task_optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  weighting_optimizer=keras.optimizers.Adam(0.05),
                  weighting=_LearnedSoftmaxWeights())


def _data():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(32, 8, 8, 3)).astype("float32")
    y = {"colour": rng.integers(0, 3, 32), "size": rng.normal(size=(32, 1)).astype("float32")}
    return x, y


def _state(model):
    return ([v.numpy() for v in model.weights] + [v.numpy() for v in model.optimizer.variables]
            + [v.numpy() for v in model.weighting.weights])


def test_keras_round_trip_continues_training_identically(tmp_path):
    x, y = _data()
    fit = dict(batch_size=8, shuffle=False, verbose=0)

    uninterrupted = _model(seed=1)
    _compile(uninterrupted)
    uninterrupted.fit(x, y, epochs=4, **fit)

    first = _model(seed=1)
    _compile(first)
    first.fit(x, y, epochs=2, **fit)
    path = tmp_path / "model.keras"
    first.save(path)
    resumed = keras.models.load_model(path, safe_mode=True)
    assert isinstance(resumed, keras_mtl.MultiTaskModel)
    assert resumed.task_names == ["colour", "size"]
    for a, b in zip(_state(first), _state(resumed)):
        np.testing.assert_array_equal(a, b)
    assert resumed.weighting.steps.numpy() == 8.0
    assert resumed.task_optimizers["colour"].get_config()["momentum"] == 0.9
    resumed.fit(x, y, epochs=2, **fit)

    for a, b in zip(_state(uninterrupted), _state(resumed)):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_default_optimizers_are_one_and_round_trip_as_one(tmp_path):
    x, y = _data()
    model = _model(seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), weighting=_LearnedSoftmaxWeights())
    assert model.task_optimizers["colour"] is model.shared_optimizer
    assert model.weighting_optimizer is model.shared_optimizer
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.weighting_optimizer is loaded.shared_optimizer
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for a, b in zip(_state(model), _state(loaded)):
        np.testing.assert_array_equal(a, b)


def test_loaded_model_keeps_task_specs_and_losses(tmp_path):
    model = keras_mtl.build(
        "hard_sharing",
        [keras_mtl.Task("a", head=1, loss="mse", loss_weight=0.5, label_slice=(0, 1)),
         keras_mtl.Task("b", head=2, loss="mae", label_slice=(1, 3))],
        backbone="mlp", input_shape=(4,))
    model.save(tmp_path / "uncompiled.keras")
    loaded = keras.models.load_model(tmp_path / "uncompiled.keras")
    loaded.compile(optimizer="sgd")
    assert loaded.weighting.fixed_weights == [0.5, 1.0]
    assert [s["label_slice"] for s in loaded.task_specs] == [[0, 1], [1, 3]]
    x = np.ones((4, 4), "float32")
    np.testing.assert_allclose(model.predict(x, verbose=0)["b"], loaded.predict(x, verbose=0)["b"])


_SERVE = """
import sys
# Serving must need neither Keras nor keras_mtl: importing either is an error here.
sys.modules["keras"] = sys.modules["keras_mtl"] = None
import numpy as np
import tensorflow as tf
x = np.load(sys.argv[2])
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
name = list(serve.structured_input_signature[1])[0]
out = serve(**{name: tf.constant(x)})
np.savez(sys.argv[3], **{k: v.numpy() for k, v in out.items()})
"""


def test_savedmodel_serves_named_outputs_in_tensorflow_only_process(tmp_path):
    model = _model(seed=2)
    _compile(model)
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = keras_mtl.export(model, str(tmp_path / "exported"))
    np.save(tmp_path / "x.npy", x)
    result = subprocess.run(
        [sys.executable, "-c", _SERVE, path, str(tmp_path / "x.npy"), str(tmp_path / "out.npz")],
        capture_output=True, text=True, check=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    served = np.load(tmp_path / "out.npz")
    assert sorted(served.files) == ["colour", "size"]
    expected = model.predict(x, verbose=0)
    for name in ("colour", "size"):
        np.testing.assert_allclose(served[name], expected[name], rtol=1e-5, atol=1e-5)


def test_export_rejects_bad_path_type():
    model = _model(seed=3)
    with pytest.raises((TypeError, ValueError)):
        keras_mtl.export(model, None)



# Methods that need constructor arguments, which a name cannot give.
_WITH_ARGUMENTS = {"fixed": lambda: keras_mtl.weighting.Fixed([0.5, 2.0]),
                   "dtp": lambda: keras_mtl.weighting.DTP(kpis={"a": "accuracy"}),
                   "trimmed_mean": lambda: keras_mtl.weighting.TrimmedMean(trim_number=0)}
# Krum needs at least 3 tasks (n_byzantine + 3); its round trip is in test_weighting_krum.py.
_TWO_TASKS_TOO_FEW = ("krum",)


@pytest.fixture
def fitted(two_task_model, two_task_data):
    """`(weighting, path=None) -> model`: `two_task_model` on 4 features without
    metrics, compiled with `weighting` (a name, or a function returning an instance),
    fitted one epoch on `two_task_data(16, features=4)` and saved to `path`."""
    def fit(weighting, path=None):
        keras.utils.set_random_seed(0)
        model = two_task_model(features=4, metrics=False)
        model.compile(optimizer="adam", weighting=weighting if isinstance(weighting, str) else weighting())
        model.fit(*two_task_data(16, features=4), batch_size=8, shuffle=False, verbose=0)
        if path is not None:
            model.save(path)
        return model
    return fit


@pytest.mark.slow
@pytest.mark.parametrize("method", keras_mtl.weighting.available())
def test_weighting_given_by_name_saves_loads_and_trains_like_an_instance(method, tmp_path, fitted,
                                                                         two_task_data):
    path = tmp_path / "model.keras"
    if method in _TWO_TASKS_TOO_FEW:
        pytest.skip(f"{method} needs at least 3 tasks")
    if method in _WITH_ARGUMENTS:
        with pytest.raises(ValueError, match="needs"):
            keras_mtl.weighting.get(method)
        models = [fitted(_WITH_ARGUMENTS[method], path)]
    else:
        models = [fitted(method, path), fitted(type(keras_mtl.weighting.get(method)))]
    models.append(keras.models.load_model(path))
    # Training goes on identically from the saved state, random draws included.
    x, y = two_task_data(16, features=4, seed=1)
    for model in models:
        model.fit(x, y, batch_size=8, shuffle=False, verbose=0)
    first = models[0]
    for model in models[1:]:
        assert type(model.weighting) is type(first.weighting)
        assert len(model.weighting.variables) == len(first.weighting.variables)
        for a, b in zip(_state(first) + [v.numpy() for v in first.weighting.variables],
                        _state(model) + [v.numpy() for v in model.weighting.variables]):
            np.testing.assert_array_equal(a, b)


def _squared_error(y_true, y_pred):
    return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="keras_mtl_tests")
def _registered_squared_error(y_true, y_pred):
    return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)


def _fitted_with_loss(task_loss, compile_loss=None, metric=None):
    keras.utils.set_random_seed(0)
    tasks = [keras_mtl.Task("a", head=1, loss="mse"),
             keras_mtl.Task("b", head=1, loss=task_loss, metrics=[metric] if metric else None)]
    model = keras_mtl.build("hard_sharing", tasks, backbone="mlp", input_shape=(4,))
    model.compile(optimizer="sgd", loss=compile_loss)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 4)).astype("float32"), {
        k: rng.normal(size=(16, 1)).astype("float32") for k in "ab"}
    return model, model.fit(x, y, batch_size=8, epochs=2, verbose=0).history


@pytest.mark.parametrize("where", ["task", "compile"])
@pytest.mark.parametrize("function", [_squared_error, lambda t, p: _squared_error(t, p)],
                         ids=["function", "lambda"])
def test_loss_function_trains_in_memory_and_saving_asks_to_register_it(function, where, tmp_path):
    if where == "task":
        model, history = _fitted_with_loss(function, metric=function)
    else:
        model, history = _fitted_with_loss("mae", compile_loss={"a": "mse", "b": function})
    reference = _fitted_with_loss("mse")[1]
    np.testing.assert_allclose(history["b_loss"], reference["b_loss"], rtol=1e-6)
    with pytest.raises(ValueError, match=r"Task 'b': cannot save its loss .*register_keras_serializable"):
        model.save(tmp_path / "model.keras")


def test_registered_loss_function_round_trips(tmp_path):
    model, _ = _fitted_with_loss(_registered_squared_error, metric=_registered_squared_error)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.task_specs[1]["loss"] is _registered_squared_error
    assert loaded.task_specs[1]["metrics"] == [_registered_squared_error]
    x = np.ones((4, 4), "float32")
    y = {k: np.zeros((4, 1), "float32") for k in "ab"}
    assert model.evaluate(x, y, verbose=0) == loaded.evaluate(x, y, verbose=0)
