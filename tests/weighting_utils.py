"""Shared helpers for the weighting tests: a tiny three-task MLP model, its data,
and a `.keras` round trip of the weighting state."""

import functools
import os

import keras
import numpy as np

import keras_mtl
from keras_mtl.backbones.mlp import mlp

TASKS = ("cls", "reg", "bin")


def batch_statistics_backbone(input_shape):
    """Dense, batch normalization (moving statistics) and dropout (a seed generator
    state): a backbone whose forward pass changes state."""
    inputs = keras.Input(input_shape)
    x = keras.layers.BatchNormalization()(keras.layers.Dense(16)(inputs))
    return keras.Model(inputs, keras.layers.Dropout(0.3)(keras.layers.ReLU()(x)))


def tiny_model(backbone=None):
    """An 8-dim input, 2 shared dense layers (or `backbone`), a 3-class, a regression
    and a binary task."""
    tasks = [
        keras_mtl.Task("cls", head=keras.layers.Dense(3, activation="softmax", name="cls_out"),
                       loss="sparse_categorical_crossentropy", metrics=["accuracy"]),
        keras_mtl.Task("reg", head=keras.layers.Dense(2, name="reg_out"), loss="mse"),
        keras_mtl.Task("bin", head=keras.layers.Dense(1, activation="sigmoid", name="bin_out"),
                       loss="binary_crossentropy"),
    ]
    return keras_mtl.build("hard_sharing", tasks, input_shape=(8,),
                           backbone=backbone or functools.partial(mlp, units=(16, 8)))


def tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = {
        "cls": (x[:, 0] > 0).astype("int32") + (x[:, 1] > 1).astype("int32"),
        "reg": np.stack([x[:, 2] * 3.0, x[:, 3] - x[:, 4]], axis=1).astype("float32"),
        "bin": (x[:, 5] > 0).astype("float32")[:, None],
    }
    return x, y


def fit_tiny(weighting, epochs=3, weighting_optimizer=None, **compile_kwargs):
    """Compiles the tiny model with `weighting`, fits it (batch 16) and returns
    `(model, history)`."""
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting=weighting,
                  weighting_optimizer=weighting_optimizer, **compile_kwargs)
    x, y = tiny_data()
    history = model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, shuffle=False)
    return model, history


def assert_weights_logged(history, epochs):
    for task in TASKS:
        values = history.history[f"{task}_weight"]
        assert len(values) == epochs and np.all(np.isfinite(values)), (task, values)


def weighting_state(model):
    return [v.numpy() for v in model.weighting.variables]


def assert_round_trip(model, tmp_path):
    """Saves and reloads `model`; its weighting state, class and config must match
    exactly and the reloaded model must keep training."""
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.weighting) is type(model.weighting)
    assert loaded.weighting.get_config() == model.weighting.get_config()
    before, after = weighting_state(model), weighting_state(loaded)
    assert len(before) == len(after)
    for variable, value, restored in zip(model.weighting.variables, before, after):
        np.testing.assert_array_equal(restored, value, err_msg=variable.path)
    x, y = tiny_data(n=16, seed=1)
    logs = loaded.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][-1])
    return loaded


def fit_and_step_logs(make, x, y):
    """`(fit logs, step logs)`: the first epoch's logs of a model from `make()` (seeded
    alike each time) fitted on `(x, y)` as two batches, and the logs of the second of
    two `train_on_batch` calls on those batches, under mixed_float16."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    half = len(x) // 2
    runs = []
    try:
        for call in ("fit", "train_on_batch"):
            keras.utils.set_random_seed(0)
            model = make()
            if call == "fit":
                history = model.fit(x, y, batch_size=half, shuffle=False, verbose=0).history
                runs.append({k: v[0] for k, v in history.items()})
            else:
                model.train_on_batch(x[:half], {k: v[:half] for k, v in y.items()})
                runs.append(model.train_on_batch(x[half:], {k: v[half:] for k, v in y.items()},
                                                 return_dict=True))
            assert int(model.optimizer.iterations.numpy()) == 1
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return runs
