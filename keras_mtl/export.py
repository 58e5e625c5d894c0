"""SavedModel export with one named output per task."""

import importlib.util
import json
import os

import keras

from keras_mtl._tensorflow import require_tensorflow

METADATA_PATH = os.path.join("assets.extra", "keras_mtl.json")
DETECTION_OUTPUTS = ("detection_boxes", "detection_scores", "detection_classes", "detection_valid")


def export(model, path, detection=None, objectness="objectness", regression="boxes"):
    """Writes a TensorFlow SavedModel whose `serving_default` signature takes the
    model's inputs and returns a dict of outputs keyed by task name.

    Serving needs only TensorFlow: `tf.saved_model.load(path).signatures["serving_default"]`.
    Beside it, `assets.extra/keras_mtl.json` (TF Serving's folder for extra assets)
    records the task names, output shapes and dtypes, and the package versions.
    Exporting needs TensorFlow on every backend (on JAX, Keras converts the model
    with `jax2tf`; on PyTorch, through StableHLO with `torch_xla`: without it, save
    the model as a `.keras` file and export it in a TensorFlow or JAX process).

    Args:
        model: a multi-task model.
        path: the SavedModel's folder.
        detection: a `keras_mtl.detection.ProposalLayer` matching the model's
            anchors: the signature then also returns the detections after
            non-maximum suppression, `detection_boxes` `(B, K, 4)` `(x1, y1, x2, y2)`
            in pixels, `detection_scores` `(B, K)` object probabilities,
            `detection_classes` `(B, K)` int32 (0, object: a region proposal network
            has one class) and `detection_valid` `(B, K)` bool (False for the
            padding after the last detection), `K` the layer's `max_output_size`.
        objectness, regression: the names of the detector's two tasks.
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
    served = model if detection is None else _with_detections(model, detection, objectness, regression)
    served.export(path, format="tf_saved_model", verbose=False)
    os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
    described = metadata(model)
    if detection is not None:
        described["detection"] = {"outputs": list(DETECTION_OUTPUTS), "tasks": [objectness, regression],
                                  "layer": detection.get_config()}
    with open(os.path.join(path, METADATA_PATH), "w") as f:
        json.dump(described, f, indent=2)
    return path


def _with_detections(model, layer, objectness, regression):
    """The model with `layer`'s decoded detections beside its per-task outputs."""
    outputs = dict(zip(model.output_names, keras.tree.flatten(model.outputs)))
    for arg, name in (("objectness", objectness), ("regression", regression)):
        if name not in outputs:
            raise ValueError(f"export: the model has no task {name!r} for the detector's {arg} "
                             f"(tasks: {list(outputs)}). Received: {arg}={name!r}")
    clashing = sorted(set(outputs) & set(DETECTION_OUTPUTS))
    if clashing:
        raise ValueError(f"export: the tasks {clashing} have the names of the detection outputs "
                         f"{list(DETECTION_OUTPUTS)}; rename them to export detections.")
    boxes, scores, valid = layer(outputs[objectness], outputs[regression])
    classes = keras.layers.Lambda(lambda v: keras.ops.zeros_like(v, dtype="int32"),
                                  name="detection_classes")(valid)
    detections = dict(zip(DETECTION_OUTPUTS, (boxes, scores, classes, valid)))
    return keras.Model(model.inputs, {**outputs, **detections}, name=f"{model.name}_with_detections")


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
