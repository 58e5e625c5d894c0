"""Trains the tiny three-task model of `weighting_utils` for a few SGD steps on the
backend named by KERAS_BACKEND and saves what the cross-backend tests compare.

Usage: python cross_backend_run.py FOLDER CONFIG...
Each CONFIG is `METHOD:MODE[:OPTION...]`: a weighting name ("fixed", "dtp", "krum" and
"trimmed_mean" get arguments), a gradient mode or "-", and options: "masks" (partial labels, and one
batch without labels for a task), "freeze" (`freeze_absent_tasks=True`),
"optimizers" (Adam for the shared variables, one optimizer per task, SGD for the
weighting method's variables; else SGD for all), "regularized" (a model with weight
and activity regularizers and batch normalization in the trunk instead). FOLDER/init.npz holds the initial weights (written when
absent, read when present; FOLDER/init_regularized.npz for the regularized model),
so that both backends start from the same values.
With `--load` first, it loads each `FOLDER/<CONFIG>.<other backend>.keras` (every
other backend whose file is there) instead and writes its predictions to
`FOLDER/<CONFIG>.<other backend>.<backend>.loaded.npz`.
FOLDER/<CONFIG>.<backend>.npz gets the trained weights ("w0", "w1", ...), the
weighting method's variables ("s0", ...; seed generator states left out), the logged
task losses and the predictions on the training inputs; FOLDER/<CONFIG>.<backend>.keras
the trained model.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_mtl  # noqa: E402
from weighting_utils import TASKS, tiny_data, tiny_model  # noqa: E402


def weighting(name, mode):
    if name == "fixed":
        return keras_mtl.weighting.Fixed([1.0, 0.5, 2.0])
    if name == "dtp":
        return keras_mtl.weighting.DTP(kpis={t: "accuracy" for t in ("cls", "bin")})
    arguments = {"krum": {"n_byzantine": 0, "n_selected": 2},
                 "trimmed_mean": {"trim_number": 1}}.get(name, {})
    cls = keras_mtl.weighting.registry._REGISTRY[name]
    return cls(**arguments) if mode == "-" else cls(gradient_mode=mode, **arguments)


def regularized_model():
    """A trunk with weight and activity regularizers and batch normalization."""
    regularizer = keras.regularizers.l2
    inputs = keras.Input((8,))
    h = keras.layers.Dense(16, kernel_regularizer=regularizer(0.01), name="d1")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Activation("relu")(h)
    h = keras.layers.Dense(8, activation="relu", activity_regularizer=regularizer(1e-3),
                           name="d2")(h)
    outputs = {"cls": keras.layers.Dense(3, activation="softmax", name="cls",
                                         kernel_regularizer=regularizer(0.02))(h),
               "reg": keras.layers.Dense(2, name="reg")(h),
               "bin": keras.layers.Dense(1, activation="sigmoid", name="bin")(h)}
    return keras_mtl.MultiTaskModel(inputs=inputs, outputs=outputs, tasks=[
        keras_mtl.Task("cls", loss="sparse_categorical_crossentropy"),
        keras_mtl.Task("reg", loss="mse"), keras_mtl.Task("bin", loss="binary_crossentropy")])


def initial_weights(folder, options):
    return os.path.join(folder, "init_regularized.npz" if "regularized" in options else "init.npz")


def run(folder, config):
    name, mode, *options = config.split(":")
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = regularized_model() if "regularized" in options else tiny_model()
    initial = initial_weights(folder, options)
    if os.path.exists(initial):
        stored = np.load(initial)
        model.set_weights([stored[f"w{i}"] for i in range(len(stored.files))])
    else:
        np.savez(initial, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    optimizers = {"optimizer": keras.optimizers.SGD(0.05)}
    if "optimizers" in options:
        optimizers = {"optimizer": keras.optimizers.Adam(0.01),
                      "task_optimizer": {"cls": keras.optimizers.SGD(0.1),
                                         "reg": keras.optimizers.SGD(0.02),
                                         "bin": keras.optimizers.Adam(0.005)},
                      "weighting_optimizer": keras.optimizers.SGD(0.3)}
    model.compile(weighting=weighting(name, mode), freeze_absent_tasks="freeze" in options,
                  **optimizers)
    x, y = tiny_data()
    sample_weight = None
    if "masks" in options:
        rng = np.random.default_rng(1)
        sample_weight = {t: (rng.random(len(x)) > 0.4).astype("float32") for t in TASKS}
        sample_weight["bin"][:16] = 0.0  # no label for "bin" in the first batch
    history = model.fit(x, y, sample_weight=sample_weight, batch_size=16, epochs=3,
                        verbose=0, shuffle=False)
    state = [v.numpy() for v in model.weighting.variables if "seed_generator" not in v.path]
    result = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    result.update({f"s{i}": s for i, s in enumerate(state)})
    result.update({f"{t}_loss": np.asarray(history.history[f"{t}_loss"]) for t in TASKS})
    result["prediction"] = np.concatenate(
        [np.reshape(p, (len(x), -1)) for p in keras.tree.flatten(model.predict(x, verbose=0))],
        axis=1)
    path = os.path.join(folder, f"{config.replace(':', '_')}.{keras.backend.backend()}")
    np.savez(path + ".npz", **result)
    model.save(path + ".keras")


def load(folder, config):
    backend = keras.backend.backend()
    path = os.path.join(folder, config.replace(":", "_"))
    x, _ = tiny_data()
    for other in ("tensorflow", "jax", "torch"):
        if other == backend or not os.path.exists(f"{path}.{other}.keras"):
            continue
        model = keras.models.load_model(f"{path}.{other}.keras")
        prediction = np.concatenate(
            [np.reshape(p, (len(x), -1)) for p in keras.tree.flatten(model.predict(x, verbose=0))],
            axis=1)
        state = [v.numpy() for v in model.weighting.variables if "seed_generator" not in v.path]
        np.savez(f"{path}.{other}.{backend}.loaded.npz", prediction=prediction,
                 **{f"s{i}": s for i, s in enumerate(state)})


if __name__ == "__main__":
    if sys.argv[2] == "--load":
        for config in sys.argv[3:]:
            load(sys.argv[1], config)
    else:
        for config in sys.argv[2:]:
            run(sys.argv[1], config)
