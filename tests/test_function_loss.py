"""`keras_mtl.losses.FunctionLoss`: a loss function as a `keras.losses.Loss`, against
numpy (float64), through its config, and in a `.keras` round trip of a model compiled
with plain function losses."""

import numpy as np
import keras
import pytest

import keras_mtl
from keras_mtl.losses import FunctionLoss


@keras.saving.register_keras_serializable(package="keras_mtl_tests")
def _cubed_error(y_true, y_pred):
    return keras.ops.mean(keras.ops.abs(y_true - y_pred) ** 3, axis=-1)


def _numpy_cubed_error(y_true, y_pred, weight):
    per_example = np.mean(np.abs(y_true - y_pred) ** 3, axis=-1).reshape(len(weight), -1)
    return float(np.sum(per_example * weight[:, None]) / per_example.size)


@pytest.mark.parametrize("true_shape,pred_shape,same_shape", [
    ((6,), (6, 1), (6, 1)),  # class-free labels without their last axis
    ((6, 1), (6,), (6, 1)),
    ((6, 4, 5, 1), (6, 4, 5), (6, 4, 5)),  # a rank-4 label loses its axis of size 1
    ((6, 4, 5), (6, 4, 5, 1), (6, 4, 5)),
    ((6, 3), (6, 3), (6, 3)),
])
def test_matches_numpy_with_keras_rank_matching(true_shape, pred_shape, same_shape):
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=true_shape)
    y_pred = rng.normal(size=pred_shape)
    weight = rng.random(6)
    # One weight per example, with an axis for each axis of the per-example losses.
    sample_weight = weight.reshape((6,) + (1,) * (len(same_shape) - 2))
    loss = FunctionLoss(_cubed_error, dtype="float64")
    got = float(loss(y_true, y_pred, sample_weight=sample_weight))
    want = _numpy_cubed_error(y_true.reshape(same_shape), y_pred.reshape(same_shape), weight)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # Keras' own loss class of a Keras loss function computes the same.
    keras_own = keras.losses.MeanSquaredError(dtype="float64")(
        y_true, y_pred, sample_weight=sample_weight)
    ours = FunctionLoss(keras.losses.mean_squared_error, dtype="float64")(
        y_true, y_pred, sample_weight=sample_weight)
    np.testing.assert_allclose(float(ours), float(keras_own), rtol=1e-12)


def test_config_round_trip():
    loss = FunctionLoss(_cubed_error, reduction="sum", name="b_loss")
    config = keras.saving.serialize_keras_object(loss)
    again = keras.saving.deserialize_keras_object(config)
    assert type(again) is FunctionLoss and again.fn is _cubed_error
    assert (again.name, again.reduction) == ("b_loss", "sum")
    y_true, y_pred = np.ones((3, 2), "float32"), np.zeros((3, 2), "float32")
    assert float(again(y_true, y_pred)) == float(loss(y_true, y_pred)) == 3.0
    assert FunctionLoss(keras.losses.huber).name == "huber"
    with pytest.raises(TypeError, match="Received: fn='mse'"):
        FunctionLoss("mse")


def test_model_compiled_with_function_losses_round_trips(tmp_path, two_task_data):
    keras.utils.set_random_seed(0)
    # Tasks without a loss of their own (not `two_task_model`'s): compile gives both.
    tasks = [keras_mtl.Task("a", head=3), keras_mtl.Task("b", head=2)]
    model = keras_mtl.build("hard_sharing", tasks, backbone="mlp", input_shape=(4,))
    model.compile(optimizer="adam", loss={"a": "sparse_categorical_crossentropy", "b": _cubed_error})
    x, y = two_task_data(32, features=4, b_units=2, seed=1)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.get_compile_config()["loss"] == model.get_compile_config()["loss"]
    assert model.evaluate(x, y, verbose=0, return_dict=True) == loaded.evaluate(
        x, y, verbose=0, return_dict=True)
    logs = [m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0).history
            for m in (model, loaded)]
    assert logs[0] == logs[1]
    # The logged task loss is the function's mean over the batch.
    b_pred = loaded.predict(x, verbose=0)["b"]
    evaluated = loaded.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)["b_loss"]
    np.testing.assert_allclose(evaluated, _numpy_cubed_error(y["b"], b_pred, np.ones(32)), rtol=1e-5)
