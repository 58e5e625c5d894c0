"""Trains the tiny three-task model of `weighting_utils` for a few SGD steps on the
backend named by KERAS_BACKEND and saves what the cross-backend tests compare.

Usage: python cross_backend_run.py FOLDER CONFIG...
Each CONFIG is `METHOD:MODE[:masks]`: a weighting name ("fixed" and "dtp" get
arguments), a gradient mode or "-", and optionally partial labels (masks, one batch
without labels for a task). FOLDER/init.npz holds the initial weights (written when
absent, read when present), so that both backends start from the same values.
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
    if mode == "-":
        return keras_mtl.weighting.get(name)
    return type(keras_mtl.weighting.get(name))(gradient_mode=mode)


def run(folder, config):
    name, mode, *options = config.split(":")
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = tiny_model()
    initial = os.path.join(folder, "init.npz")
    if os.path.exists(initial):
        stored = np.load(initial)
        model.set_weights([stored[f"w{i}"] for i in range(len(stored.files))])
    else:
        np.savez(initial, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    model.compile(optimizer=keras.optimizers.SGD(0.05), weighting=weighting(name, mode))
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


if __name__ == "__main__":
    for config in sys.argv[2:]:
        run(sys.argv[1], config)
