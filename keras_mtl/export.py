"""SavedModel export with one named output per task."""

import importlib.util
import json
import os

import keras

from keras_mtl._tensorflow import require_tensorflow

METADATA_PATH = os.path.join("assets.extra", "keras_mtl.json")


def export(model, path):
    """Writes a TensorFlow SavedModel whose `serving_default` signature takes the
    model's inputs and returns a dict of outputs keyed by task name.

    Serving needs only TensorFlow: `tf.saved_model.load(path).signatures["serving_default"]`.
    Beside it, `assets.extra/keras_mtl.json` (TF Serving's folder for extra assets)
    records the task names, output shapes and dtypes, and the package versions.
    Exporting needs TensorFlow on every backend (on JAX, Keras converts the model
    with `jax2tf`; on PyTorch, through StableHLO with `torch_xla`: without it, save
    the model as a `.keras` file and export it in a TensorFlow or JAX process).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a string or path. Received: path={path!r}")
    path = os.fspath(path)
    require_tensorflow("SavedModel export (keras_mtl.export)")
    if keras.backend.backend() == "torch" and importlib.util.find_spec("torch_xla") is None:
        raise NotImplementedError(
            "keras_mtl.export on the PyTorch backend needs torch_xla (Keras converts a torch "
            "model to a SavedModel through StableHLO), which is not installed. Save the model "
            f"(model.save('{model.name}.keras')) and export it in a process on the TensorFlow "
            f"or JAX backend: .keras files load on every backend. Received: path={path!r}")
    model.export(path, format="tf_saved_model", verbose=False)
    os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
    with open(os.path.join(path, METADATA_PATH), "w") as f:
        json.dump(metadata(model), f, indent=2)
    return path


def metadata(model):
    """Task names, input and output shapes and versions of a multi-task model."""
    from keras_mtl import __version__

    tf = require_tensorflow("SavedModel export (keras_mtl.export)")
    outputs = dict(zip(model.output_names, keras.tree.flatten(model.outputs)))
    return {
        "format": "keras_mtl.savedmodel/1",
        "keras_mtl_version": __version__,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "inputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype}
                   for t in keras.tree.flatten(model.inputs)],
        "tasks": [{"name": name, "shape": list(t.shape), "dtype": t.dtype}
                  for name, t in outputs.items()],
    }


def read_metadata(path):
    """Reads the metadata that `export` wrote beside a SavedModel."""
    with open(os.path.join(os.fspath(path), METADATA_PATH)) as f:
        return json.load(f)
